"""Monitor state that survives a crash and moves with its partition.

Every ``interval`` seconds the agent writes a snapshot of each model or source it touched to a
changelogged table, and only *then* acknowledges the input events those snapshots include, so Kafka's
committed offsets never run ahead of the saved state (Faust flushes the changelog before it commits).
The state can run ahead of the committed offsets, though (a crash after the snapshot, before the commit),
so each snapshot records the offset of the last event it includes, per input partition; re-read events
at or below it are skipped for that key. After a crash or a rebalance, the worker that owns a partition
restores each key the first time it sees it: nothing skipped, nothing counted twice (detections emitted
again are ignored by the router as replays).

A key's checkpoint goes to the changelog partition of the input partition its events come from, so a
partition's keys and their checkpoints travel together (producers key events by model or source name).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
import zlib
from typing import Any, Callable, Protocol, Sequence

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


class Checkpointed:
    """A fleet whose per-key state is saved to ``table`` and whose input is acknowledged only once saved."""

    def __init__(self, fleet: Fleet, table: faust.Table, key_of: Callable[[Any], str], interval_s: float,
                 clock: Callable[[], float] = time.monotonic, max_unacked: int = MAX_UNACKED,
                 generation: Callable[[], int | None] = lambda: None) -> None:
        self.fleet = fleet
        self.generation = generation  # the consumer group generation this worker is in now
        self._recovered: int | None = None  # the generation whose tables are fully recovered
        self.max_unacked = max_unacked
        self.table = table
        self.key_of = key_of
        self.interval_s = interval_s
        self.clock = clock
        self._loaded: set[str] = set()  # keys restored (or found absent) since this worker got them
        self._dirty: dict[str, faust.types.EventT] = {}  # key -> the last event that changed it
        self._partition_of: dict[str, TP] = {}
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

    def observe(self, record: Any, event: faust.types.EventT) -> list[Detection]:
        key = self.key_of(record)
        if key not in self._loaded:
            self._restore(key)
        message = event.message
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
        self._dirty[key] = event
        self._partition_of[key] = message.tp
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
        dirty, self._dirty = self._dirty, {}
        unacked, self._unacked = self._unacked, []
        for key, event in dirty.items():
            blob = orjson.dumps(self._applied[key]) + b"\n" + zlib.compress(self.fleet.snapshot_key(key), 1)
            # A table write goes to the changelog partition of the event being processed; outside the agent
            # loop (the timer) there is none, so the event that last changed the key stands in for it.
            token = _current_event.set(weakref.ref(event))
            try:
                self.table[key.encode()] = blob
            finally:
                _current_event.reset(token)
        self.saved += len(dirty)
        if self._stream is not None:
            for event in unacked:
                await self._stream.ack(event)

    def recovered(self) -> None:
        """Faust has read the tables back for the current assignment (it seeks the inputs next)."""
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
            self.fleet.forget_key(key)
            self._loaded.discard(key)
            self._dirty.pop(key, None)
            self._applied.pop(key, None)
            self._restored.pop(key, None)
            del self._partition_of[key]
        self._unacked = [e for e in self._unacked if e.message.tp not in partitions]
        if gone:
            log.info("released the state of %d keys of revoked partitions", len(gone))


def checkpointed(fleet: Fleet, table: faust.Table, key_of: Callable[[Any], str]) -> Checkpointed:
    """A checkpointed fleet wired into the worker: rebalance signals, and the timer that checkpoints a quiet
    agent, so the last events before a lull are committed too."""
    from app.faust_app import app, settings

    watcher = Checkpointed(fleet, table, key_of, settings.checkpoint_interval_s,
                           generation=lambda: app.consumer_generation_id)
    app.on_partitions_revoked.connect(lambda sender, revoked, **_: watcher.revoked(revoked))
    # Generations, not the order of signals: Faust may send rebalance-complete before partitions-assigned.
    app.on_rebalance_complete.connect(lambda sender, **_: watcher.recovered())
    app.timer(interval=settings.checkpoint_interval_s)(watcher.checkpoint)
    return watcher
