"""The broker the integration suite runs against must serve what the app relies on: explicitly
created multi-partition topics, keyed writes, and reads from the beginning."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.broker import LocalBroker

MESSAGES = [
    (b"model-a", b'{"drift": 0.1}'),
    (b"model-b", b'{"drift": 0.7}'),
    (b"model-c", b'{"drift": 0.3}'),
]


async def _consume(bootstrap: str, topic: str, count: int) -> tuple[set[int], list[tuple[bytes, bytes]]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        received: list[tuple[bytes, bytes]] = []
        async with asyncio.timeout(30):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500)
                received += [(msg.key, msg.value) for msgs in batches.values() for msg in msgs]
        return consumer.partitions_for_topic(topic) or set(), received
    finally:
        await consumer.stop()


async def _round_trip(bootstrap: str, topic: str) -> tuple[set[int], list[tuple[bytes, bytes]]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        try:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
            await producer.start()
            try:
                for key, value in MESSAGES:
                    await producer.send_and_wait(topic, value, key=key)
            finally:
                await producer.stop()
            return await _consume(bootstrap, topic, len(MESSAGES))
        finally:
            await admin.delete_topics([topic])
    finally:
        await admin.close()


def test_keyed_messages_round_trip_through_a_three_partition_topic(bootstrap: str) -> None:
    partitions, received = asyncio.run(_round_trip(bootstrap, f"emlops-it-{uuid.uuid4().hex[:12]}"))

    assert partitions == {0, 1, 2}
    assert sorted(received) == sorted(MESSAGES)


def test_local_broker_reports_running(local_broker: LocalBroker | None, bootstrap: str) -> None:
    if local_broker is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names an external cluster; no local broker to inspect")

    status = local_broker.status()
    assert status == {
        "running": True,
        "pid": int(local_broker.pid_file.read_text()),
        "bootstrap": bootstrap,
        "data_dir": str(local_broker.data_dir),
    }
    assert bootstrap == f"127.0.0.1:{local_broker.port}"
    # Another process (the CLI) only has the data dir and the pid file to go on.
    stranger = LocalBroker(local_broker.data_dir, port=local_broker.port, controller_port=local_broker.controller_port)
    assert stranger.status() == status
    assert stranger.start(timeout=5) == bootstrap
