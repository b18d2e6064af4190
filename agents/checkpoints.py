"""Monitor state that survives a crash and moves with its partition.

Every ``interval`` seconds the agent writes a snapshot of each model or source it touched to a
changelogged table, and only *then* acknowledges the input events those snapshots include, so Kafka's
committed offsets never run ahead of the saved state (Faust flushes the changelog before it commits).
The state can run ahead of the committed offsets, though (a crash after the snapshot, before the commit),
so each snapshot records the offset of the last event it includes, per input partition; re-read events
at or below it are skipped for that key. After a crash or a rebalance, the worker that owns a partition
restores its keys once its tables are recovered (a key first seen later, when it first sees it): nothing
skipped, nothing counted twice (detections emitted again are ignored by the router as replays). A key the
fleet evicts loses its checkpoint at the next one.

A key's checkpoint goes to the changelog partition of the input partition its events come from, so a
partition's keys and their checkpoints travel together (producers key events by model or source name).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
import zlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol, Sequence

import faust
import orjson
from faust.streams import _current_event
from faust.types import TP

from models.schema import Detection

log = logging.getLogger(__name__)
# Processed events held unacknowledged until a checkpoint: a burst checkpoints early rather than hold more,
# so what a burst keeps in flight is capped by count, not only by the interval.
MAX_UNACKED = 5_000


class Fleet(Protocol):
    def observe(self, record: Any) -> list[Detection]: ...
    def snapshot_key(self, key: str) -> bytes: ...
    def restore_key(self, key: str, blob: bytes) -> None: ...
    def forget_key(self, key: str) -> None: ...
    def keys(self) -> list[str]: ...


class Checkpointed:
    """A fleet whose per-key state is saved to ``table`` and whose input is acknowledged only once saved."""

    def __init__(self, fleet: Fleet, table: faust.Table, key_of: Callable[[Any], str], interval_s: float,
                 clock: Callable[[], float] = time.monotonic, max_unacked: int = MAX_UNACKED,
                 generation: Callable[[], int | None] = lambda: None, max_keys: int = 10_000) -> None:
        self.fleet = fleet
        self.max_keys = max_keys
        self.generation = generation  # the consumer group generation this worker is in now
        self._recovered: int | None = None  # the generation whose tables are fully recovered
        self.max_unacked = max_unacked
        self.table = table
        self.key_of = key_of
        self.interval_s = interval_s
        self.clock = clock
        self._loaded: set[str] = set()  # keys restored (or found absent) since this worker got them
        self._dirty: set[str] = set()  # keys changed since the last checkpoint
        self._partition_of: dict[str, TP] = {}  # where a key's last event came from: its checkpoint goes there
        self._applied: dict[str, dict[str, int]] = {}  # key -> "topic:partition" -> last offset in its state
        self._restored: dict[str, dict[str, int]] = {}  # the same, as of the checkpoint the key came back from
        self._unacked: list[faust.types.EventT] = []
        self._stream: faust.StreamT | None = None
        self._in_progress: faust.types.EventT | None = None  # the message whose records are being observed
        self.lock = asyncio.Lock()  # held by a batch being processed, and by a checkpoint
        self._last = clock()
        self.saved = 0
        self.restored = 0
        self.skipped = 0
        self.evicted = 0

    def observe(self, record: Any, event: faust.types.EventT) -> list[Detection]:
        key = self.key_of(record)
        message = event.message
        if key not in self._loaded:
            self._restore(key)
        self._partition_of[key] = message.tp
        where = f"{message.topic}:{message.partition}"
        applied = self._applied.setdefault(key, {})
        last = applied.get(where, -1)
        # Already in the state: at or below the restored checkpoint, or not beyond what this key has seen
        # since (a re-delivery after a seek) — unless it is the message being processed, which may carry
        # several records of one key.
        if message.offset <= self._restored.get(key, {}).get(where, -1) or message.offset < last or (
                message.offset == last and event is not self._in_progress):
            self.skipped += 1
            return []
        applied[where] = message.offset
        self._in_progress = event
        self._dirty.add(key)
        return self.fleet.observe(record)

    def _restore(self, key: str) -> None:
        stored = self.table.get(key.encode())
        if stored:
            header, blob = stored.split(b"\n", 1)
            self._restored[key] = orjson.loads(header)
            self._applied[key] = dict(self._restored[key])
            self.fleet.restore_key(key, zlib.decompress(blob))
            self.restored += 1
        self._loaded.add(key)

    def _evict(self, key: str) -> None:
        """The fleet evicted the key's monitors (``max_keys``, least recently used): its checkpoint goes too,
        as the table is held in memory. Should the key come back, it starts afresh, as it would in memory."""
        partition = self._partition_of.get(key)
        self._forget(key)
        if partition is not None and key.encode() in self.table:
            with _writing_to(partition):
                del self.table[key.encode()]
        self.evicted += 1

    def hold(self, stream: faust.StreamT, events: Sequence[faust.types.EventT]) -> None:
        """Keep a processed batch's acknowledgements until the checkpoint that saves its effects."""
        self._stream = stream
        self._unacked.extend(events)

    async def maybe_checkpoint(self) -> None:
        if self.clock() - self._last >= self.interval_s or len(self._unacked) >= self.max_unacked:
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """Save every touched key, then acknowledge the events the saved state includes. Also run by a
        timer, so the last events before a quiet spell are committed too."""
        async with self.lock:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        self._last = self.clock()
        live = set(self.fleet.keys())
        for key in [key for key in self._loaded if key not in live]:
            self._evict(key)
        dirty, self._dirty = self._dirty, set()
        unacked, self._unacked = self._unacked, []
        for key in dirty:
            blob = orjson.dumps(self._applied[key]) + b"\n" + zlib.compress(self.fleet.snapshot_key(key), 1)
            with _writing_to(self._partition_of[key]):
                self.table[key.encode()] = blob
        self.saved += len(dirty)
        if self._stream is not None:
            for event in unacked:
                await self._stream.ack(event)

    def recovered(self, assignment: set[TP]) -> None:
        """Faust has read the tables back for the current assignment (it seeks the inputs next). The keys
        checkpointed from the assigned partitions come back now rather than at their next event, so what
        this worker shows of them (the model health views) does not go blank after a rebalance."""
        places = {f"{tp.topic}:{tp.partition}": tp for tp in assignment}
        for stored_key, stored in list(self.table.items()):
            if len(self._loaded) >= self.max_keys:
                break
            key = stored_key.decode()
            if key in self._loaded or not stored:
                continue
            ours = [places[where] for where in orjson.loads(stored.split(b"\n", 1)[0]) if where in places]
            if ours:
                self._restore(key)
                self._partition_of[key] = ours[0]
        self._recovered = self.generation()

    def accepting(self, event: faust.types.EventT) -> bool:
        """Whether an event may be processed now. Not one fetched in an earlier generation of the group:
        it was buffered before a rebalance, and the seek after that rebalance delivers it again in order.
        Not before the tables are recovered: a key restored from a table still being read would start from
        nothing. Refused events stay unacknowledged, so the seek that ends the recovery delivers them again."""
        current = self.generation()
        return event.message.generation_id == current and self._recovered == current

    async def revoked(self, partitions: set[TP]) -> None:
        """Partitions went to another worker: it restores their keys from the table and re-reads their
        unacknowledged events, so this worker drops both rather than keep state that will go stale. Under
        the lock, so no batch is half-way; nothing buffered is accepted until the next recovery."""
        self._recovered = None
        async with self.lock:
            self._release(partitions)

    def _release(self, partitions: set[TP]) -> None:
        gone = [key for key, tp in self._partition_of.items() if tp in partitions]
        for key in gone:
            self._forget(key)
        self._unacked = [e for e in self._unacked if e.message.tp not in partitions]
        if gone:
            log.info("released the state of %d keys of revoked partitions", len(gone))

    def _forget(self, key: str) -> None:
        self.fleet.forget_key(key)
        self._loaded.discard(key)
        self._dirty.discard(key)
        self._applied.pop(key, None)
        self._restored.pop(key, None)
        self._partition_of.pop(key, None)


class _Place:
    """Where a table write goes, in the shape Faust reads it from the current event (``.message.topic``,
    ``.message.partition``)."""

    def __init__(self, partition: TP) -> None:
        self.message = partition


@contextmanager
def _writing_to(partition: TP) -> Iterator[None]:
    """A table write goes to the changelog partition of the event being processed. A key's checkpoint must
    go to its own input partition's, whichever event is current (none, for the timer), so it names it."""
    place = _Place(partition)
    token = _current_event.set(weakref.ref(place))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def checkpointed(fleet: Fleet, table: faust.Table, key_of: Callable[[Any], str]) -> Checkpointed:
    """A checkpointed fleet wired into the worker: rebalance signals, and the timer that checkpoints a quiet
    agent, so the last events before a lull are committed too."""
    from app.faust_app import app, settings

    watcher = Checkpointed(fleet, table, key_of, settings.checkpoint_interval_s,
                           generation=lambda: app.consumer_generation_id, max_keys=settings.monitor.max_keys)
    app.on_partitions_revoked.connect(lambda sender, revoked, **_: watcher.revoked(revoked))
    # Generations, not the order of signals: Faust may send rebalance-complete before partitions-assigned.
    app.on_rebalance_complete.connect(lambda sender, **_: watcher.recovered(app.consumer.assignment()))
    app.timer(interval=settings.checkpoint_interval_s)(watcher.checkpoint)
    return watcher
