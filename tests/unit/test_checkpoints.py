"""The checkpoint bookkeeping alone, without a broker: which events a worker may process around a rebalance,
and which ones it has already counted before a crash."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from agents.checkpoints import Checkpointed
from faust.types import TP

PARTITION = TP("in", 0)


class CountingFleet:
    """Counts what it observes per key; its snapshot is that count."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def observe(self, record: Any) -> list:
        self.seen[record] = self.seen.get(record, 0) + 1
        return []

    def snapshot_key(self, key: str) -> bytes:
        return str(self.seen[key]).encode()

    def restore_key(self, key: str, blob: bytes) -> None:
        self.seen[key] = int(blob)

    def forget_key(self, key: str) -> None:
        self.seen.pop(key, None)


class Stream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: Any) -> None:
        self.acked.append(event.message.offset)


class Event:
    """What Faust hands the agent, as far as checkpoints look: the message's place and generation."""

    def __init__(self, offset: int, generation: int) -> None:
        self.message = SimpleNamespace(tp=PARTITION, topic=PARTITION.topic, partition=PARTITION.partition,
                                       offset=offset, generation_id=generation)


event = Event


def watcher(table: dict, generation: list[int]) -> tuple[Checkpointed, CountingFleet]:
    fleet = CountingFleet()
    return Checkpointed(fleet, table, key_of=lambda record: record, interval_s=60,
                        generation=lambda: generation[0]), fleet


def test_nothing_is_accepted_between_an_assignment_and_the_recovery_of_its_tables() -> None:
    generation = [1]
    checkpoints, _ = watcher({}, generation)
    assert not checkpoints.accepting(event(0, 1))  # generation 1 assigned, tables not yet read
    checkpoints.recovered()
    assert checkpoints.accepting(event(0, 1))


def test_events_buffered_before_a_rebalance_are_refused_after_it() -> None:
    generation = [1]
    checkpoints, _ = watcher({}, generation)
    checkpoints.recovered()
    stale = event(7, 1)
    asyncio.run(checkpoints.revoked({PARTITION}))
    assert not checkpoints.accepting(stale)  # revoked: nothing until the next recovery
    generation[0] = 2
    checkpoints.recovered()
    assert not checkpoints.accepting(stale)  # fetched in generation 1; the seek delivers it again
    assert checkpoints.accepting(event(7, 2))


def test_recovery_signalled_before_the_join_of_a_new_generation_does_not_open_it() -> None:
    generation = [1]
    checkpoints, _ = watcher({}, generation)
    checkpoints.recovered()
    generation[0] = 2
    assert not checkpoints.accepting(event(0, 2))


def test_events_already_in_a_restored_checkpoint_are_counted_once() -> None:
    table: dict = {}
    generation = [1]
    first, fleet = watcher(table, generation)
    first.recovered()
    stream = Stream()
    batch = [event(offset, 1) for offset in range(5)]
    for e in batch:
        first.observe("model-a", e)
    first.hold(stream, batch)
    asyncio.run(first.checkpoint())
    assert (fleet.seen["model-a"], stream.acked) == (5, [0, 1, 2, 3, 4])
    for e in [event(offset, 1) for offset in range(5, 8)]:  # counted, then the worker dies unsaved
        first.observe("model-a", e)

    second, restored = watcher(table, generation)
    second.recovered()
    for offset in range(3, 10):  # re-read from an older committed offset
        second.observe("model-a", event(offset, 1))
    assert restored.seen["model-a"] == 10
    assert second.skipped == 2


def test_a_revoked_partition_forgets_its_keys_and_their_unacknowledged_events() -> None:
    generation = [1]
    checkpoints, fleet = watcher({}, generation)
    checkpoints.recovered()
    stream = Stream()
    batch = [event(0, 1), event(1, 1)]
    for e in batch:
        checkpoints.observe("model-a", e)
    checkpoints.hold(stream, batch)
    asyncio.run(checkpoints.revoked({PARTITION}))
    asyncio.run(checkpoints.checkpoint())
    assert fleet.seen == {} and stream.acked == []
