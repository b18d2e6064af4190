"""Reads the input topics in batches with a consumer of its own, feeds the monitors, sends only detections.

Faust hands events to an agent one at a time (stream, processors, acks: about 180 µs each), far more than
the monitors cost; so the inputs bypass it. One aiokafka consumer (group ``<app id>-intake``) reads every
input topic; each topic routes to its fleet's decoder and :class:`~agents.checkpoints.Checkpointed`. Every
``checkpoint_interval_s`` (or ``checkpoint_max_events`` events) the intake saves the touched keys' state to
the fleet's compacted state topic, a few keys between two batches, waits until that state and every
detection sent so far are stored, and only then commits the input offsets processed when it began. A
rebalance does the same at once before giving the partitions up, so a graceful hand-over replays nothing;
the new owner reads the state of its partitions before it fetches.

A message that cannot be decoded, or that makes a monitor fail, goes to the dead-letter topic with the
reason and its origin in headers; the intake carries on with the next one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service
from prometheus_client.core import GaugeMetricFamily

from agents.checkpoints import Checkpointed, Snapshot, Write
from agents.dead_letters import dead_letter
from agents.metrics import metrics
from app.config import build_input_adapters
from app.faust_app import app, routing_rules, settings
from app.topics import CHECKPOINT_MAX_BYTES, state_topic
from models import codec
from models.schema import Detection, InvalidEvent

log = logging.getLogger(__name__)
# Extra input topics speak other formats (configuration file [[inputs]]); their adapters translate each
# message into native events (none while half of a request/response pair waits, several for a batch).
input_adapters = build_input_adapters(settings)
# The longest stretch of monitoring between two turns of the event loop. The routing agent and the web views
# share the loop, and a detection takes several turns to become a ticket (Faust's consumer thread hands it
# over, the agent routes it, the producer sends the revision), each behind one such stretch; a count of
# events instead would make that wait grow with the cost of an event.
YIELD_AFTER_S = 0.001
SAVE_SLICE_S = 0.01  # snapshots taken between two batches (at least one)
# While a checkpoint is in progress, the share of the intake's time its snapshots may take. Saved back to
# back, a round of large keys (each tens of ms to pickle) left the input a fraction of its rate for a second:
# the queue it built delayed every ticket of that second and the next. Spaced out, the input keeps up
# between two keys.
SAVE_SHARE = 0.25
RECORD_OVERHEAD = 1024  # what a record adds to its key and value, generously (Kafka's limit is on the batch)


class _AdapterState:
    """``emlops_adapter_state{topic, format, counter}``: pairs waiting, paired, expired, evicted, skipped..."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("emlops_adapter_state", "Counters and sizes of the input adapters, by topic.",
                                   labels=["topic", "format", "counter"])
        for topic, adapter in input_adapters.items():
            for counter, value in adapter.stats().items():
                family.add_metric([topic, adapter.format, counter], value)
        yield family


if input_adapters:
    metrics.registry.register(_AdapterState())


@dataclass
class FleetInput:
    """One fleet's inputs: its topics, how their messages decode, its checkpointed monitors and state topic."""

    name: str
    topics: list[str]
    decode: Callable[[Any], Any]
    watcher: Checkpointed
    state_topic: str
    unsaved: int = 0  # events processed since the last checkpoint (what a crash would make it read again)
    lead: int = 0  # how much sooner than checkpoint_max_events a round starts: see Intake._checkpoint_due


@dataclass
class _Positions:
    """Per input partition: the offset after the last event processed, and the last offset committed."""

    processed: dict[TopicPartition, int] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass
class _Round:
    """A checkpoint in progress: the offsets it commits once done, the events they cover per fleet, the keys
    still to save, the writes taken (deletions, and snapshots) and the snapshots being compressed and sent."""

    mark: dict[TopicPartition, int]
    unsaved: dict[str, int]
    due: list[tuple[FleetInput, str]]
    written: list[tuple[FleetInput, Write | Snapshot]] = field(default_factory=list)
    storing: list[asyncio.Future[None]] = field(default_factory=list)


class Intake(Service):
    """The input side of a worker: one consumer for every fleet's topics, their checkpoints and commits."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fleets: dict[str, FleetInput] = {}  # by fleet name
        self._by_topic: dict[str, FleetInput] = {}
        self.lock = asyncio.Lock()  # held by a batch being processed, by a checkpoint and by a rebalance
        self.ready = asyncio.Event()  # partitions assigned and their state restored
        self._positions = _Positions()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._sent: list[asyncio.Future[Any]] = []  # deliveries since the last checkpoint
        self._round: _Round | None = None  # the checkpoint in progress
        self._next_save = 0.0  # perf_counter: not before this time does the round save its next keys
        self._last_checkpoint = time.monotonic()
        self._generation = 0  # counts revocations: a batch fetched before one is not processed after it
        self._compressing = ThreadPoolExecutor(1, thread_name_prefix="emlops-checkpoint")  # one core at most

    def add(self, name: str, topics: Iterable[str], decode: Callable[[Any], Any],
            watcher: Checkpointed) -> FleetInput:
        fleet = FleetInput(name, list(topics), decode, watcher, state_topic(settings, name))
        self.fleets[name] = fleet
        self._by_topic.update({topic: fleet for topic in fleet.topics})
        return fleet

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        options = settings.kafka_client_options()
        # Long enough to ride out a broker outage: a checkpoint waits for its writes rather than lose them.
        # No linger: a detection is waited for, and a checkpoint's burst of snapshots still shares requests
        # while an earlier one is in flight.
        self._producer = AIOKafkaProducer(**options, acks="all", linger_ms=0, request_timeout_ms=300_000,
                                          max_request_size=CHECKPOINT_MAX_BYTES)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=settings.intake_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=max(100, int(settings.session_timeout_s * 1000 / 4)),
            # Partition n of every input topic to one worker, with partition n of the state topics.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._consumer.subscribe(list(self._by_topic), listener=_Listener(self))
        await self._consumer.start()

    @Service.task
    async def _consume(self) -> None:
        assert self._consumer is not None
        while not self.should_stop:
            batch = await self._consumer.getmany(timeout_ms=int(settings.batch_within_s * 1000),
                                                 max_records=settings.batch_size)
            # Taken once the batch is in hand: getmany itself waits out a rebalance and then returns records of
            # the new assignment, which must not be dropped (the consumer's position is already past them).
            generation = self._generation
            async with self.lock:
                if self.should_stop:
                    break
                if generation != self._generation:
                    continue  # revoked while waiting for the lock: read again from the commit after it
                await self._process(batch)
                await self._checkpoint_along()

    async def on_stop(self) -> None:
        """Save and commit what was processed, then leave the group (its partitions move at once)."""
        if self._consumer is not None:
            async with self.lock:
                await self._checkpoint()
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        self._compressing.shutdown()

    # --- the batch ---------------------------------------------------------------------------------------

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        turn_ends = time.perf_counter() + YIELD_AFTER_S
        for tp, records in batch.items():
            fleet = self._by_topic[tp.topic]
            adapter = input_adapters.get(tp.topic)
            observe = fleet.watcher.observe
            for record in records:
                if time.perf_counter() >= turn_ends:
                    await asyncio.sleep(0)
                    turn_ends = time.perf_counter() + YIELD_AFTER_S
                found: list[Detection] = []
                try:
                    if adapter is None:
                        events = [fleet.decode(codec.loads(record.value))]
                    else:
                        events = adapter.translate(record.value, record.headers, record.timestamp / 1000)
                    for event in events:
                        found.extend(observe(event, record))
                except InvalidEvent as exc:
                    metrics.decode_failures[tp.topic] += 1
                    await self._dead_letter(record, str(exc))
                except Exception as exc:  # a decoder or monitor bug must cost one event, not the worker
                    log.exception("monitor failed on %s[%s]@%s", record.topic, record.partition, record.offset)
                    await self._dead_letter(record, f"internal error: {type(exc).__name__}: {exc}")
                for detection in found:  # at once, not after the batch: a ticket is waited for
                    await self._send_detection(detection)
            metrics.consumed[tp.topic] += len(records)
            fleet.unsaved += len(records)
            self._positions.processed[tp] = records[-1].offset + 1

    async def _send_detection(self, detection: Detection) -> None:
        metrics.detections[detection.kind.value] += 1
        dedup_key, _ = routing_rules.group(detection)
        await self._send(settings.topics.detections, key=dedup_key.encode(),
                         value=codec.dumps({"type": "detection", **detection.to_dict()}))

    async def _send(self, topic: str, **kwargs: Any) -> None:
        assert self._producer is not None
        self._sent.append(await self._producer.send(topic, **kwargs))

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        await dead_letter(functools.partial(self._send, settings.topics.dead_letter), record, reason)

    # --- checkpoints -------------------------------------------------------------------------------------

    def _checkpoint_due(self) -> bool:
        """When the interval is up, or a fleet nears ``checkpoint_max_events`` unsaved events: by twice as many
        as it processed while its last round was saving (at most half the count), so that a round spaced out
        still ends before the count. At high rates the count, not the interval, starts every round; started
        at the count itself, they had to be saved back to back, and stalled the input as long."""
        return time.monotonic() - self._last_checkpoint >= settings.checkpoint_interval_s or any(
            f.unsaved + f.lead >= settings.checkpoint_max_events for f in self.fleets.values())

    def _too_many_unsaved(self) -> bool:
        return any(f.unsaved >= settings.checkpoint_max_events for f in self.fleets.values())

    async def _checkpoint_along(self) -> None:
        """Between batches: start a checkpoint when one is due, save its keys for up to ``SAVE_SLICE_S``
        at a time and at most ``SAVE_SHARE`` of the time, and commit once all are stored. Saving every key at
        once would stall the input (and the tickets of every detection in it) for as long as pickling a fleet
        takes: hundreds of ms for the benchmark's 16 keys. Once a fleet has ``checkpoint_max_events`` unsaved
        events, a slice follows every batch: that count caps what a crash reads again."""
        if self._round is None:
            if not self._checkpoint_due():
                return
            self._round = await self._begin()
        started = time.perf_counter()
        if started < self._next_save and not self._too_many_unsaved():
            return
        while self._round.due and time.perf_counter() - started < SAVE_SLICE_S:
            await self._save(*self._round.due.pop())
        ended = time.perf_counter()
        self._next_save = ended + (ended - started) * (1 - SAVE_SHARE) / SAVE_SHARE
        if not self._round.due:
            await self._finish()

    async def _checkpoint(self) -> None:
        """Save and commit everything processed so far, at once: before a revocation, or when stopping."""
        if self._round is not None:  # the one in progress first: it covers less
            await self._complete()
        self._round = await self._begin()
        await self._complete()

    async def _complete(self) -> None:
        assert self._round is not None
        while self._round.due:
            await self._save(*self._round.due.pop())
        await self._finish()

    async def _begin(self) -> _Round:
        """A checkpoint covers what was processed when it began: each key saved later holds at least that."""
        self._last_checkpoint = time.monotonic()
        due, written = [], []
        for fleet in self.fleets.values():
            deletions, keys = fleet.watcher.begin()
            for write in deletions:
                await self._write(fleet, write)
                written.append((fleet, write))
            due.extend((fleet, key) for key in keys)
        return _Round(dict(self._positions.processed), {f.name: f.unsaved for f in self.fleets.values()}, due, written)

    async def _save(self, fleet: FleetInput, key: str) -> None:
        snapshot = fleet.watcher.save(key)
        if snapshot is not None:
            assert self._round is not None
            self._round.written.append((fleet, snapshot))
            self._round.storing.append(asyncio.ensure_future(self._store(fleet, snapshot)))

    async def _store(self, fleet: FleetInput, snapshot: Snapshot) -> None:
        """Compressed on the checkpoint's thread, while the intake goes on with its batches; then sent. A
        snapshot the state topic would refuse is not: the key's older one is deleted instead, so that after a
        crash the key starts afresh rather than from a state that misses what was committed since (retrying
        it at every checkpoint would hold the commits back for good)."""
        write = await asyncio.get_running_loop().run_in_executor(self._compressing, snapshot.write)
        size = len(write.blob or b"") + len(write.key.encode())
        if size > CHECKPOINT_MAX_BYTES - RECORD_OVERHEAD:
            log.error("the snapshot of %r is %d bytes compressed, more than the state topic takes (%d): not "
                      "stored, and its older one deleted", write.key, size, CHECKPOINT_MAX_BYTES)
            fleet.watcher.oversized += 1
            write = write._replace(blob=None)
        await self._write(fleet, write)

    async def _write(self, fleet: FleetInput, write: Write) -> None:
        await self._send(fleet.state_topic, key=write.key.encode(), value=write.blob, partition=write.partition)

    async def _finish(self) -> None:
        """Wait until the checkpoint's state, and every detection and dead letter sent so far, are stored;
        then commit the offsets it covers. Should a write fail, its keys are due at the next checkpoint and
        nothing is committed: the events are read again."""
        done, self._round = self._round, None
        assert done is not None
        stored = await asyncio.gather(*done.storing, return_exceptions=True)  # each snapshot sent, or failed
        sent, self._sent = self._sent, []
        try:
            for result in stored:
                if isinstance(result, BaseException):
                    raise result
            await asyncio.gather(*sent)
        except KafkaError as exc:
            log.warning("checkpoint not stored, retried at the next one: %s", exc)
            for fleet, write in done.written:
                fleet.watcher.retry([write])
            return
        for fleet in self.fleets.values():
            fleet.unsaved = max(0, fleet.unsaved - done.unsaved[fleet.name])  # those processed since it began
            fleet.lead = min(2 * fleet.unsaved, settings.checkpoint_max_events // 2)
        offsets = {tp: offset for tp, offset in done.mark.items() if self._positions.committed.get(tp) != offset}
        if offsets and self._consumer is not None:
            try:
                await self._consumer.commit(offsets)
                self._positions.committed.update(offsets)
            except KafkaError as exc:  # a rebalance or an outage: committed at the next checkpoint
                log.warning("offsets not committed, retried at the next checkpoint: %s", exc)

    # --- rebalances --------------------------------------------------------------------------------------

    async def revoked(self) -> None:
        """Before the partitions go back to the group: save and commit everything processed, then drop it."""
        self.ready.clear()
        async with self.lock:
            self._generation += 1
            await self._checkpoint()
            for fleet in self.fleets.values():
                fleet.watcher.released()
                fleet.unsaved = 0
            self._positions = _Positions()

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """Before fetching from its new partitions: read their state back."""
        async with self.lock:
            for fleet in self.fleets.values():
                ours = sorted({tp.partition for tp in partitions if tp.topic in fleet.topics})
                stored = await _retrying(functools.partial(_read_state, fleet.state_topic, ours))
                fleet.watcher.assigned(stored, (f"{tp.topic}:{tp.partition}" for tp in partitions))
                log.info("%s: %d input partitions, state of %d keys read back", fleet.name, len(ours), len(stored))
            self._last_checkpoint = time.monotonic()
        self.ready.set()

    # --- what the ops views show -------------------------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    def lag(self) -> dict[TopicPartition, int]:
        """Messages behind the end of each assigned input partition, as of the latest fetch."""
        found = {}
        if self._consumer is None:
            return found
        for tp in self.assignment():
            end = self._consumer.highwater(tp)
            position = self._positions.processed.get(tp)
            if end is not None and position is not None:
                found[tp] = max(0, end - position)
        return found

    def not_ready(self) -> list[str]:
        return [] if self.ready.is_set() else ["input partitions not assigned yet, or their state still loading"]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.intake.revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.intake.assigned(assigned)


async def _retrying(read: Callable[[], Any], pause_s: float = 2.0) -> Any:
    """Until it succeeds: a worker that went on without its partitions' state would start them afresh."""
    while True:
        try:
            return await read()
        except KafkaError as exc:
            log.warning("could not read the monitor state back, retrying in %.0f s: %s", pause_s, exc)
            await asyncio.sleep(pause_s)


async def _read_state(topic: str, partitions: list[int]) -> dict[str, bytes]:
    """The latest snapshot of every key on these partitions of a state topic (deleted keys left out)."""
    if not partitions:
        return {}
    reader = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None, enable_auto_commit=False,
                              max_partition_fetch_bytes=CHECKPOINT_MAX_BYTES, fetch_max_bytes=4 * CHECKPOINT_MAX_BYTES)
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        stored: dict[str, bytes] = {}
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            for tp, records in (await reader.getmany(*remaining, timeout_ms=500)).items():
                for record in records:
                    if record.value:
                        stored[record.key.decode()] = record.value
                    else:
                        stored.pop(record.key.decode(), None)
            remaining = {tp for tp in remaining if await reader.position(tp) < ends[tp]}
        return stored
    finally:
        await reader.stop()


intake = Intake(loop=None)
app.add_dependency(intake)
