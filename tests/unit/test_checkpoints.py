"""The checkpoint bookkeeping alone, without a broker: what a snapshot says it includes, which re-read events
a restored key skips, and what leaves with a revocation or an eviction. The intake's Kafka side (state
topics, commits, rebalances) is covered by the reliability tests against the real broker."""

from __future__ import annotations

import zlib
from types import SimpleNamespace
from typing import Any, Callable

import zstandard

from agents.checkpoints import Checkpointed, Write


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


def origin(offset: int, partition: int = 0, topic: str = "in") -> Any:
    """Where a record came from, as an aiokafka ``ConsumerRecord`` says."""
    return SimpleNamespace(topic=topic, partition=partition, offset=offset)


def watcher(max_keys: int = 10_000) -> tuple[Checkpointed, CountingFleet]:
    fleet = CountingFleet()
    return Checkpointed(fleet, key_of=lambda record: record, max_keys=max_keys), fleet


def checkpoint(checkpoints: Checkpointed) -> list[Write]:
    """A whole checkpoint at once: the deletions, then every due key's snapshot."""
    deletions, due = checkpoints.begin()
    return deletions + [snapshot.write() for snapshot in map(checkpoints.save, due) if snapshot is not None]


def stored(writes: list[Write], store: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The state topic after ``writes``, compacted: the latest snapshot per key, deletions removed."""
    store = dict(store or {})
    for write in writes:
        if write.blob is None:
            store.pop(write.key, None)
        else:
            store[write.key] = write.blob
    return store


def test_events_already_in_a_restored_snapshot_are_counted_once() -> None:
    first, fleet = watcher()
    for offset in range(5):
        first.observe("model-a", origin(offset))
    store = stored(checkpoint(first))
    assert fleet.seen["model-a"] == 5
    for offset in range(5, 8):  # counted, then the worker dies before the next checkpoint
        first.observe("model-a", origin(offset))

    second, restored = watcher()
    second.assigned(store, ["in:0"])
    for offset in range(3, 10):  # re-read from an older committed offset
        second.observe("model-a", origin(offset))
    assert restored.seen["model-a"] == 10
    assert second.skipped == 2


def test_a_snapshot_that_does_not_restore_starts_its_key_afresh() -> None:
    """A snapshot another build wrote (a format or a compiled type this one lacks) must not stop the worker:
    the key starts afresh, counted, and no re-read event is skipped on the strength of that snapshot."""
    first, _ = watcher()
    for offset in range(5):
        first.observe("model-a", origin(offset))
        first.observe("model-b", origin(offset, partition=1))
    store = stored(checkpoint(first))
    store["model-a"] = store["model-a"].split(b"\n", 1)[0] + b"\n" + zlib.compress(b"not a count")

    second, fleet = watcher()
    second.assigned(store, ["in:0", "in:1"])
    assert fleet.seen == {"model-b": 5} and (second.restored, second.refused) == (1, 1)
    for offset in range(3, 7):  # re-read from an older committed offset
        second.observe("model-a", origin(offset))
    assert fleet.seen["model-a"] == 4 and second.skipped == 0


def test_snapshots_are_zstd_and_those_written_with_zlib_before_still_restore() -> None:
    first, _ = watcher()
    for offset in range(5):
        first.observe("model-a", origin(offset))
        first.observe("model-b", origin(offset, partition=1))
    store = stored(checkpoint(first))
    header, blob = store["model-a"].split(b"\n", 1)
    assert zstandard.decompress(blob) == b"5"
    store["model-a"] = header + b"\n" + zlib.compress(b"5", 1)  # as a worker before zstd wrote it

    second, fleet = watcher()
    second.assigned(store, ["in:0", "in:1"])
    assert fleet.seen == {"model-a": 5, "model-b": 5} and (second.restored, second.refused) == (2, 0)


def test_several_records_of_one_message_all_count_but_a_redelivery_does_not() -> None:
    checkpoints, fleet = watcher()
    message = origin(4)
    checkpoints.observe("model-a", message)
    checkpoints.observe("model-a", message)  # a batch message: two records of one key
    checkpoints.observe("model-a", origin(4))  # the same offset delivered again
    assert (fleet.seen["model-a"], checkpoints.skipped) == (2, 1)


def test_a_snapshot_goes_to_the_partition_its_key_came_from() -> None:
    checkpoints, _ = watcher()
    checkpoints.observe("model-a", origin(0, partition=2))
    checkpoints.observe("model-b", origin(0, partition=3))
    assert sorted((w.partition, w.key) for w in checkpoint(checkpoints)) == [(2, "model-a"), (3, "model-b")]
    assert checkpoint(checkpoints) == []  # nothing touched since


def test_released_partitions_forget_their_keys() -> None:
    checkpoints, fleet = watcher()
    checkpoints.observe("model-a", origin(0))
    checkpoint(checkpoints)
    checkpoints.released()
    assert fleet.seen == {} and checkpoint(checkpoints) == []


def test_a_key_the_fleet_evicted_loses_its_snapshot_too() -> None:
    checkpoints, fleet = watcher()
    for offset, key in enumerate(["a", "b"]):
        checkpoints.observe(key, origin(offset))
    store = stored(checkpoint(checkpoints))
    assert sorted(store) == ["a", "b"]
    del fleet.seen["b"]  # pushed out of the fleet (max_keys, least recently used)
    checkpoints.observe("a", origin(2))
    store = stored(checkpoint(checkpoints), store)
    assert (sorted(store), checkpoints.evicted) == (["a"], 1)
    checkpoints.observe("b", origin(3))  # back: it starts afresh, as it would in memory
    assert fleet.seen["b"] == 1


def test_the_keys_of_assigned_partitions_come_back_without_waiting_for_their_next_event() -> None:
    before, _ = watcher()
    before.observe("model-a", origin(0))
    before.observe("model-b", origin(0, partition=1))
    store = stored(checkpoint(before))

    after, fleet = watcher()
    after.assigned(store, ["in:0"])  # partition 0 only
    assert fleet.seen == {"model-a": 1}
    after.observe("model-b", origin(1, partition=1))  # a later key comes back at its first event
    assert fleet.seen == {"model-a": 1, "model-b": 2}


def test_beyond_max_keys_the_rest_come_back_at_their_next_event() -> None:
    before, _ = watcher()
    for offset, key in enumerate(["a", "b", "c"]):
        before.observe(key, origin(offset))
    store = stored(checkpoint(before))

    after, fleet = watcher(max_keys=2)
    after.assigned(store, ["in:0"])
    assert len(fleet.seen) == 2
    (left,) = set("abc") - set(fleet.seen)
    after.observe(left, origin(5))
    assert fleet.seen[left] == 2


def test_a_snapshot_not_stored_is_written_again_at_the_next_checkpoint() -> None:
    checkpoints, _ = watcher()
    checkpoints.observe("model-a", origin(0))
    lost = checkpoint(checkpoints)
    checkpoints.retry(lost)
    assert [w.key for w in checkpoint(checkpoints)] == ["model-a"]


def test_a_deletion_not_stored_is_written_again_unless_its_key_came_back_or_was_released() -> None:
    checkpoints, fleet = watcher()
    for offset, key in enumerate(["a", "b", "c"]):
        checkpoints.observe(key, origin(offset))
    store = stored(checkpoint(checkpoints))
    del fleet.seen["b"], fleet.seen["c"]  # evicted
    lost = checkpoint(checkpoints)
    assert sorted((w.key, w.blob) for w in lost) == [("b", None), ("c", None)]
    checkpoints.retry(lost)  # the broker did not store them: the old snapshots would come back after a crash
    checkpoints.observe("c", origin(3))  # back before the next checkpoint: saved afresh, not deleted
    store = stored(checkpoint(checkpoints), store)
    assert sorted(store) == ["a", "c"] and checkpoints.restored == 0
    del fleet.seen["a"]
    lost = checkpoint(checkpoints)
    checkpoints.retry(lost)
    checkpoints.released()  # the partition's new owner may have saved "a" since: not this worker's to delete
    assert checkpoint(checkpoints) == []


def test_a_key_saved_later_in_a_checkpoint_holds_what_it_observed_until_then() -> None:
    checkpoints, fleet = watcher()
    checkpoints.observe("model-a", origin(0))
    checkpoints.observe("model-b", origin(1))
    deletions, due = checkpoints.begin()
    checkpoints.observe("model-b", origin(2))  # between two saves of one checkpoint
    saved = {s.key: s.write() for s in map(checkpoints.save, due) if s is not None}
    assert (deletions, sorted(saved)) == ([], ["model-a", "model-b"])
    restored, again = watcher()
    restored.assigned(stored(list(saved.values())), ["in:0"])
    assert again.seen == {"model-a": 1, "model-b": 2}
    assert [w.key for w in checkpoint(checkpoints)] == ["model-b"]  # changed since the checkpoint began


def test_a_key_released_before_its_turn_has_nothing_to_save() -> None:
    checkpoints, _ = watcher()
    checkpoints.observe("model-a", origin(0))
    _, due = checkpoints.begin()
    checkpoints.released()
    assert [checkpoints.save(key) for key in due] == [None]


def _paced_round(monkeypatch: Any, keys: list[str], cost: dict[str, float],
                 unsaved: Callable[[int], int] = lambda batch: 0) -> tuple[list, list]:
    """A checkpoint round of ``keys`` run between batches of 5 ms, on a clock that pickling a key advances by
    its ``cost``, with ``unsaved(batch)`` events unsaved after each batch: when each key was saved, and when
    the round finished."""
    import asyncio

    from agents import intake as intake_module

    clock = [100.0]
    monkeypatch.setattr(intake_module.time, "perf_counter", lambda: clock[0])
    intake = intake_module.Intake()
    fleet = intake.add("model", ["in"], lambda value: value, watcher()[0])
    saves: list[tuple[str, float]] = []
    finished: list[float] = []

    async def save(fleet: Any, key: str) -> None:
        saves.append((key, clock[0]))
        clock[0] += cost[key.split("-")[0]]

    async def finish() -> None:
        finished.append(clock[0])
        intake._round = None

    monkeypatch.setattr(intake, "_save", save)
    monkeypatch.setattr(intake, "_finish", finish)
    intake._round = intake_module._Round({}, {}, [(None, key) for key in keys])

    async def batches() -> None:
        batch = 0
        while intake._round is not None:
            fleet.unsaved = unsaved(batch)
            await intake._checkpoint_along()
            clock[0] += 0.005  # a batch of events between two calls
            batch += 1

    asyncio.run(batches())
    assert sorted(key for key, _ in saves) == sorted(keys) and len(finished) == 1
    return saves, finished


def test_a_checkpoint_saves_its_keys_spaced_out_to_a_share_of_the_intakes_time(monkeypatch) -> None:
    """Snapshots taken back to back left the input a fraction of its rate for as long as the round lasted;
    between two slices of saving, the intake now processes batches for three times as long."""
    from agents import intake as intake_module

    cost = {"big": 0.03, "small": 0.001}  # seconds of pickling per key
    keys = [f"big-{i}" for i in range(4)] + [f"small-{i}" for i in range(20)]
    saves, finished = _paced_round(monkeypatch, keys, cost)
    starts = [at for _, at in saves]
    small_runs = [b - a for a, b in zip(starts, starts[1:]) if b - a < 0.002]
    assert len(small_runs) >= 12  # cheap keys: several in one slice of SAVE_SLICE_S
    spent = sum(cost[key.split("-")[0]] for key in keys)
    assert finished[0] - starts[0] >= (spent - cost["big"]) / intake_module.SAVE_SHARE  # the last slice ends it
    big = sorted(at for key, at in saves if key.startswith("big"))
    assert all(b - a >= 0.03 / intake_module.SAVE_SHARE for a, b in zip(big, big[1:]))


def test_once_the_count_of_unsaved_events_is_reached_a_slice_follows_every_batch(monkeypatch) -> None:
    """That count caps what a crash reads again: from the batch that reaches it on, the round saves a slice
    after every batch."""
    from agents import intake as intake_module

    count = intake_module.settings.checkpoint_max_events
    keys = [f"big-{i}" for i in range(6)]
    saves, finished = _paced_round(monkeypatch, keys, {"big": 0.03}, lambda batch: count - 1 + (batch >= 25))
    starts = [at for _, at in saves]
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.03 / intake_module.SAVE_SHARE - 1e-9  # spaced out while under the count
    assert gaps[-3:] == [0.035] * 3  # then the key, one batch, the next key
    assert round(finished[0] - starts[-1], 3) == 0.03  # and the round ends with the last one


def test_the_count_starts_a_round_early_by_twice_the_events_of_the_last_rounds_saving(monkeypatch) -> None:
    """So that a round spaced out ends before the count of unsaved events is reached; at most half the count."""
    import asyncio

    from agents import intake as intake_module

    count = intake_module.settings.checkpoint_max_events
    intake = intake_module.Intake()
    fleet = intake.add("model", ["in"], lambda value: value, watcher()[0])
    fleet.unsaved = 1_000
    asyncio.run(intake._checkpoint())  # a round that covers 1,000 events...
    assert (fleet.unsaved, fleet.lead) == (0, 0)
    fleet.unsaved = count - 1
    assert not intake._checkpoint_due()
    intake._round = asyncio.run(intake._begin())
    fleet.unsaved += 3_000  # ...and 3,000 more processed while the next was saving
    asyncio.run(intake._complete())
    assert (fleet.unsaved, fleet.lead) == (3_000, 6_000)
    fleet.unsaved = count - 6_001
    assert not intake._checkpoint_due()
    fleet.unsaved += 1
    assert intake._checkpoint_due()
    intake._round = asyncio.run(intake._begin())
    fleet.unsaved += count  # a round that could not keep up: the lead is capped
    asyncio.run(intake._complete())
    assert fleet.lead == count // 2


class FakeProducer:
    """Records what is sent; each delivery is a future the test settles (stored, or failed)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], Any]] = []

    async def send(self, topic: str, **kwargs: Any) -> Any:
        import asyncio

        delivery = asyncio.get_running_loop().create_future()
        self.sent.append((topic, kwargs, delivery))
        return delivery


def test_snapshots_are_compressed_off_the_event_loop_then_sent_and_committed_once_stored(monkeypatch) -> None:
    """Compressing took as long as pickling: the intake's thread does it while the loop goes on. The offsets
    are committed only once every snapshot is stored; should one fail, every key of the round is due again
    and nothing is committed."""
    import asyncio
    import threading

    from agents import checkpoints as checkpoints_module
    from agents import intake as intake_module

    compressed_on: list[str] = []
    compress = zstandard.compress
    monkeypatch.setattr(checkpoints_module.zstandard, "compress", lambda data, level: (
        compressed_on.append(threading.current_thread().name), compress(data, level))[1])
    intake = intake_module.Intake()
    checkpoints, counts = watcher()
    fleet = intake.add("model", ["in"], lambda value: value, checkpoints)
    producer = intake._producer = FakeProducer()
    commits: list[dict] = []
    intake._consumer = SimpleNamespace(commit=lambda offsets: commits.append(offsets) or asyncio.sleep(0))

    async def round_(fail: bool) -> None:
        for offset, key in enumerate(["model-a", "model-b", "model-a"]):
            checkpoints.observe(key, origin(offset))
        intake._positions.processed[intake_module.TopicPartition("in", 0)] = 3
        fleet.unsaved = 3
        producer.sent.clear()
        finishing = asyncio.ensure_future(intake._checkpoint())
        while len(producer.sent) < 2:  # both snapshots compressed and sent: not yet stored
            await asyncio.sleep(0.001)
        assert not finishing.done() and not commits
        for i, (_, _, delivery) in enumerate(producer.sent):
            if fail and i == 1:
                delivery.set_exception(intake_module.KafkaError("not stored"))
            else:
                delivery.set_result(None)
        await finishing

    asyncio.run(round_(fail=True))
    assert not commits and fleet.unsaved == 3
    assert sorted(checkpoints.begin()[1]) == ["model-a", "model-b"]  # both due again
    checkpoints, counts = watcher()
    fleet.watcher = checkpoints
    asyncio.run(round_(fail=False))
    assert commits == [{intake_module.TopicPartition("in", 0): 3}] and fleet.unsaved == 0
    restored, again = watcher()
    restored.assigned({kwargs["key"].decode(): kwargs["value"] for _, kwargs, _ in producer.sent}, ["in:0"])
    assert again.seen == {"model-a": 2, "model-b": 1}
    assert compressed_on and set(compressed_on) != {threading.main_thread().name}
    assert all(name.startswith("emlops-checkpoint") for name in compressed_on)


def test_a_snapshot_too_large_for_the_state_topic_deletes_the_keys_older_one_and_the_rest_commit(monkeypatch) -> None:
    """The broker would refuse it at every checkpoint and hold every commit back; instead the key's older
    snapshot goes (after a crash it starts afresh, not from a state that misses what was committed since),
    it is counted, and the round commits."""
    import asyncio
    import os

    from agents import intake as intake_module

    class BulkyFleet(CountingFleet):
        def snapshot_key(self, key: str) -> bytes:
            return os.urandom(4096) if key == "model-big" else super().snapshot_key(key)

    monkeypatch.setattr(intake_module, "CHECKPOINT_MAX_BYTES", intake_module.RECORD_OVERHEAD + 2048)
    intake = intake_module.Intake()
    checkpoints = Checkpointed(BulkyFleet(), key_of=lambda record: record)
    fleet = intake.add("model", ["in"], lambda value: value, checkpoints)
    producer = intake._producer = FakeProducer()
    commits: list[dict] = []
    intake._consumer = SimpleNamespace(commit=lambda offsets: commits.append(offsets) or asyncio.sleep(0))

    async def round_() -> None:
        for offset, key in enumerate(["model-big", "model-small"]):
            checkpoints.observe(key, origin(offset))
        intake._positions.processed[intake_module.TopicPartition("in", 0)] = 2
        finishing = asyncio.ensure_future(intake._checkpoint())
        while len(producer.sent) < 2:
            await asyncio.sleep(0.001)
        for _, _, delivery in producer.sent:
            delivery.set_result(None)
        await finishing

    asyncio.run(round_())
    values = {kwargs["key"].decode(): kwargs["value"] for _, kwargs, _ in producer.sent}
    assert values["model-big"] is None and values["model-small"] is not None
    assert checkpoints.oversized == 1 and commits == [{intake_module.TopicPartition("in", 0): 2}]
