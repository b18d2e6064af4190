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

    def keys(self) -> list[str]:
        return list(self.seen)


class Stream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: Any) -> None:
        self.acked.append(event.message.offset)


class Event:
    """What Faust hands the agent, as far as checkpoints look: the message's place, and the group
    generation it was fetched in."""

    def __init__(self, offset: int, generation: int = 1, partition: TP = PARTITION) -> None:
        self.message = SimpleNamespace(tp=partition, topic=partition.topic, partition=partition.partition,
                                       offset=offset, generation_id=generation)


event = Event


def watcher(table: dict, generation: list[int] | None = None, max_keys: int = 10_000
            ) -> tuple[Checkpointed, CountingFleet]:
    current = generation or [1]
    fleet = CountingFleet()
    return Checkpointed(fleet, table, key_of=lambda record: record, interval_s=60,
                        generation=lambda: current[0], max_keys=max_keys), fleet


def opened(checkpoints: Checkpointed) -> Checkpointed:
    """As at the end of a rebalance: the tables are recovered."""
    checkpoints.recovered(set())
    return checkpoints


def accepted(checkpoints: Checkpointed, events: list) -> list[int]:
    return [e.message.offset for e in events if checkpoints.accepting(e)]


def test_nothing_is_accepted_between_an_assignment_and_the_recovery_of_its_tables() -> None:
    checkpoints, _ = watcher({})
    assert accepted(checkpoints, [event(0)]) == []  # generation 1 assigned, tables not yet read
    opened(checkpoints)
    assert accepted(checkpoints, [event(0)]) == [0]


def test_events_buffered_before_a_rebalance_are_refused_after_it() -> None:
    generation = [1]
    checkpoints = opened(watcher({}, generation)[0])
    stale = event(7, generation=1)
    asyncio.run(checkpoints.revoked({PARTITION}))
    assert accepted(checkpoints, [stale]) == []  # revoked: nothing until the next recovery
    generation[0] = 2
    opened(checkpoints)
    assert accepted(checkpoints, [stale, event(7, generation=2)]) == [7]  # the seek delivers it again


def test_recovery_signalled_before_the_join_of_a_new_generation_does_not_open_it() -> None:
    generation = [1]
    checkpoints = opened(watcher({}, generation)[0])
    generation[0] = 2
    assert accepted(checkpoints, [event(0, generation=2)]) == []


def test_events_already_in_a_restored_checkpoint_are_counted_once() -> None:
    table: dict = {}
    first, fleet = watcher(table)
    opened(first)
    stream = Stream()
    batch = [event(offset) for offset in range(5)]
    for e in batch:
        first.observe("model-a", e)
    first.hold(stream, batch)
    asyncio.run(first.checkpoint())
    assert (fleet.seen["model-a"], stream.acked) == (5, [0, 1, 2, 3, 4])
    for e in [event(offset) for offset in range(5, 8)]:  # counted, then the worker dies unsaved
        first.observe("model-a", e)

    second, restored = watcher(table)
    opened(second)
    for offset in range(3, 10):  # re-read from an older committed offset
        second.observe("model-a", event(offset))
    assert restored.seen["model-a"] == 10
    assert second.skipped == 2


def test_a_revoked_partition_forgets_its_keys_and_their_unacknowledged_events() -> None:
    checkpoints, fleet = watcher({})
    opened(checkpoints)
    stream = Stream()
    batch = [event(0, 1), event(1, 1)]
    for e in batch:
        checkpoints.observe("model-a", e)
    checkpoints.hold(stream, batch)
    asyncio.run(checkpoints.revoked({PARTITION}))
    asyncio.run(checkpoints.checkpoint())
    assert fleet.seen == {} and stream.acked == []


def test_a_key_the_fleet_evicted_loses_its_checkpoint_too() -> None:
    table: dict = {}
    checkpoints, fleet = watcher(table)
    opened(checkpoints)
    for offset, key in enumerate(["a", "b"]):
        checkpoints.observe(key, event(offset))
    asyncio.run(checkpoints.checkpoint())
    assert sorted(table) == [b"a", b"b"]
    del fleet.seen["b"]  # pushed out of the fleet (max_keys, least recently used)
    checkpoints.observe("a", event(2))
    asyncio.run(checkpoints.checkpoint())
    assert (sorted(table), checkpoints.evicted) == ([b"a"], 1)
    checkpoints.observe("b", event(3))  # back: it starts afresh, as it would in memory
    assert fleet.seen["b"] == 1


def test_the_keys_of_assigned_partitions_come_back_at_recovery_without_waiting_for_their_next_event() -> None:
    table: dict = {}
    before = opened(watcher(table)[0])
    before.observe("model-a", event(0))
    before.observe("model-b", event(0, partition=TP("in", 1)))
    asyncio.run(before.checkpoint())

    after, fleet = watcher(table)
    after.recovered({PARTITION})  # partition 0 only
    assert fleet.seen == {"model-a": 1}
    asyncio.run(after.revoked({PARTITION}))  # and it leaves with its partition
    assert fleet.seen == {}
