"""Small producer/consumer helpers the integration tests share."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

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
