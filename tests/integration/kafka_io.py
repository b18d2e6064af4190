"""Small producer/consumer helpers the integration tests share."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from app.settings import Settings
from models import codec


async def produce(settings: Settings, topic: str, messages: Iterable[tuple[str, Any]]) -> int:
    """Send (key, value) pairs; dict values are JSON-encoded, bytes go as they are."""
    producer = AIOKafkaProducer(linger_ms=5, **settings.kafka_client_options())
    await producer.start()
    count = 0
    try:
        for key, value in messages:
            raw = value if isinstance(value, bytes) else codec.dumps(value)
            await producer.send(topic, raw, key=key.encode())
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def read_until(
    settings: Settings, topic: str, done: Callable[[list[ConsumerRecord]], bool], timeout: float = 90
) -> list[ConsumerRecord]:
    """Everything on ``topic`` from the beginning until ``done(records)`` holds; a timeout fails loudly."""
    consumer = AIOKafkaConsumer(
        topic, auto_offset_reset="earliest", enable_auto_commit=False, **settings.kafka_client_options()
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout):
            while not done(records):
                batches = await consumer.getmany(timeout_ms=300)
                records += [r for rs in batches.values() for r in rs]
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s on {topic}; read {len(records)} records") from None
    finally:
        await consumer.stop()
    return records


def tickets(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    return [codec.loads(r.value) for r in records]


async def wait_consumed(settings: Settings, topics: Iterable[str], timeout: float = 60) -> None:
    """Until the worker's consumer groups (Faust's and the intake's) have committed every partition of
    ``topics`` to its end offset: the only way to know a worker has seen input that, correctly, produced no
    output."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    probe = AIOKafkaConsumer(**settings.kafka_client_options())
    await admin.start()
    await probe.start()
    try:
        partitions = [tp for t in topics for tp in
                      (TopicPartition(t, p) for p in (await probe._client.fetch_all_metadata()).partitions_for_topic(t))]
        ends = await probe.end_offsets(partitions)
        done: dict = {}
        async with asyncio.timeout(timeout):
            while True:
                done = dict.fromkeys(partitions, 0)
                for group in (settings.app_id, settings.intake_group):
                    try:
                        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                    except KafkaError:  # the worker's group does not exist yet
                        continue
                    for tp, meta in committed.items():
                        if tp in done:
                            done[tp] = max(done[tp], meta.offset)
                if all(done[tp] >= ends[tp] for tp in partitions):
                    return
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(f"the worker did not consume {list(topics)} within {timeout}s: "
                             f"committed {done}, end offsets {ends}") from None
    finally:
        await probe.stop()
        await admin.close()


async def wait_members(settings: Settings, count: int, timeout: float = 90) -> None:
    """Until the worker groups (Faust's and the intake's) are stable with ``count`` members each."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                groups = [(await admin.describe_consumer_groups([group]))[0].groups[0]  # one at a time: aiokafka
                          for group in (settings.app_id, settings.intake_group)]  # misreads several in one
                if all(state == "Stable" and len(members) == count for _, _, state, _, _, members, *_ in groups):
                    return
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(f"the groups of {settings.app_id} did not settle with {count} members") from None
    finally:
        await admin.close()
