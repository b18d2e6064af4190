"""Workarounds for faust-streaming and aiokafka behaviour that loses messages, applied when the app is built.

Each names the behaviour, so it can go once the pinned versions fix it.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


async def _seek_to_committed_or_earliest(consumer: AIOKafkaConsumer) -> Mapping[Any, int | None]:
    committed = await consumer.seek_to_committed()
    unseekable = [tp for tp, offset in committed.items() if not offset]
    if unseekable:
        await consumer.seek_to_beginning(*unseekable)
    return committed


async def _seek_to_committed(self: AIOKafkaConsumerThread) -> Mapping[Any, int | None]:
    """Faust ends every rebalance by seeking to the committed offsets, and drops the records it had fetched
    in the previous generation, relying on that seek to deliver them again. aiokafka seeks only to offsets
    above 0, so a partition with nothing committed yet (a new topic, a new group) kept its fetch position and
    the dropped records were lost: a detection produced during a rebalance never became a ticket. Such
    partitions are sought to their beginning, as ``auto_offset_reset="earliest"`` means."""
    return await self.call_thread(_seek_to_committed_or_earliest, self._ensure_consumer())


def apply() -> None:
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign]
