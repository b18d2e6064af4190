"""Monitor state that survives a crash and moves with its partition: the bookkeeping, without Kafka.

The intake (agents/intake.py) saves a snapshot of each key (model or source) it touched to a compacted state
topic every few seconds, and only *then* commits the input offsets those snapshots include, so Kafka's
committed offsets never run ahead of the saved state. The state can run ahead of the committed offsets
(a crash after the snapshot, before the commit), so each snapshot records the offset of the last event it
includes, per input partition; re-read events at or below it are skipped for that key: nothing skipped,
nothing counted twice (detections emitted again are ignored by the router as replays).

A key's snapshot goes to the state partition numbered like the input partition its events come from
(producers key events by model or source name), so a partition's keys and their state travel together.
A key the fleet evicts (``max_keys``, least recently used) loses its snapshot at the next checkpoint.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any, Callable, Iterable, NamedTuple, Protocol

import orjson
import zstandard

from models.schema import Detection

log = logging.getLogger(__name__)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # how a zstd frame begins; a zlib stream (snapshots before zstd) does not


class Fleet(Protocol):
    def observe(self, record: Any) -> list[Detection]: ...
    def snapshot_key(self, key: str) -> bytes: ...
    def restore_key(self, key: str, blob: bytes) -> None: ...
    def forget_key(self, key: str) -> None: ...
    def keys(self) -> list[str]: ...


class Origin(Protocol):
    """Where a record came from: an aiokafka ``ConsumerRecord`` has these."""

    topic: str
    partition: int
    offset: int


class Write(NamedTuple):
    """One record for the state topic: a key's snapshot, or its deletion (``blob`` None)."""

    partition: int
    key: str
    blob: bytes | None


class Snapshot(NamedTuple):
    """A key's state as :meth:`Checkpointed.save` took it, before compression. The intake compresses on a
    thread of its own while its event loop goes on (the state is bytes by then, which nothing changes), with
    zstd: on a full label join (50,000 predictions; request ids and confidences hardly compress) zlib took
    34 ms, seven times as long as pickling it, for a slightly larger result; zstd takes 4 ms."""

    partition: int
    key: str
    applied: bytes  # the header: the last offset included, per input partition
    state: bytes

    def write(self) -> Write:
        return Write(self.partition, self.key, self.applied + b"\n" + zstandard.compress(self.state, 1))


def decompress(blob: bytes) -> bytes:
    """A snapshot's state: zstd, or zlib as written before (those still restore)."""
    if blob.startswith(_ZSTD_MAGIC):
        return zstandard.decompress(blob)
    return zlib.decompress(blob)


class Checkpointed:
    """A fleet whose per-key state is saved in snapshots that say which input offsets they include."""

    def __init__(self, fleet: Fleet, key_of: Callable[[Any], str], max_keys: int = 10_000) -> None:
        self.fleet = fleet
        self.key_of = key_of
        self.max_keys = max_keys
        self._stored: dict[str, bytes] = {}  # snapshots of the assigned partitions, until their key is restored
        self._loaded: set[str] = set()  # keys restored (or found absent) since this worker got them
        self._dirty: set[str] = set()  # keys changed since the last checkpoint
        self._partition_of: dict[str, int] = {}  # where a key's last event came from: its snapshot goes there
        self._applied: dict[str, dict[str, int]] = {}  # key -> "topic:partition" -> last offset in its state
        self._restored: dict[str, dict[str, int]] = {}  # the same, as of the snapshot the key came back from
        self._in_progress: Origin | None = None  # the message whose records are being observed
        self._undeleted: list[Write] = []  # deletions that were not stored, written again at the next checkpoint
        self.saved = 0
        self.restored = 0
        self.refused = 0  # snapshots that did not restore (their keys started afresh)
        self.oversized = 0  # snapshots too large for the state topic: not stored, their keys' older ones deleted
        self.skipped = 0
        self.evicted = 0

    def observe(self, record: Any, origin: Origin) -> list[Detection]:
        key = self.key_of(record)
        if key not in self._loaded:
            self._restore(key)
        self._partition_of[key] = origin.partition
        where = f"{origin.topic}:{origin.partition}"
        applied = self._applied.setdefault(key, {})
        last = applied.get(where, -1)
        # Already in the state: at or below the restored snapshot, or not beyond what this key has seen
        # since — unless it is the message being processed, which may carry several records of one key.
        if origin.offset <= self._restored.get(key, {}).get(where, -1) or origin.offset < last or (
                origin.offset == last and origin is not self._in_progress):
            self.skipped += 1
            return []
        applied[where] = origin.offset
        self._in_progress = origin
        self._dirty.add(key)
        return self.fleet.observe(record)

    def _restore(self, key: str) -> None:
        stored = self._stored.pop(key, None)
        if stored:
            header, blob = stored.split(b"\n", 1)
            try:
                self.fleet.restore_key(key, decompress(blob))
            except Exception as exc:  # noqa: BLE001 - whatever the snapshot holds, the worker carries on
                # Written by another version or build (a format it does not read, a compiled type it lacks):
                # the key starts afresh, as after an eviction, rather than stop the worker at every restart.
                log.warning("snapshot of %r not restored, its monitors start afresh: %s", key, exc)
                self.refused += 1
            else:
                self._restored[key] = orjson.loads(header)
                self._applied[key] = dict(self._restored[key])
                self.restored += 1
        self._loaded.add(key)

    def begin(self) -> tuple[list[Write], list[str]]:
        """Start a checkpoint: the deletions of the snapshots of the keys the fleet has evicted since the last
        one (should such a key come back, it starts afresh, as in memory), and the keys changed since, to
        :meth:`save` one by one (the intake interleaves them with its batches)."""
        live = set(self.fleet.keys())
        # A deletion not stored before is written again, unless its key came back since (it is saved instead).
        deletions = [write for write in self._undeleted if write.key not in self._loaded]
        self._undeleted = []
        for key in [key for key in self._loaded if key not in live]:
            partition = self._partition_of.get(key)
            self._forget(key)
            if partition is not None:
                deletions.append(Write(partition, key, None))
            self.evicted += 1
        due, self._dirty = sorted(self._dirty), set()
        return deletions, due

    def save(self, key: str) -> Snapshot | None:
        """A key's snapshot as of now (it includes every event observed so far), or None if the key is gone
        (evicted or released) since the checkpoint began: then it has nothing to save."""
        if key not in self._loaded or key not in self._applied:
            return None
        self.saved += 1
        return Snapshot(self._partition_of[key], key, orjson.dumps(self._applied[key]), self.fleet.snapshot_key(key))

    def assigned(self, stored: dict[str, bytes], places: Iterable[str]) -> None:
        """This worker now owns the input partitions ``places`` ("topic:partition") and ``stored`` holds
        their snapshots by key. The keys whose snapshot includes one of those partitions come back now rather
        than at their next event, so what this worker shows of them (the model health views) does not go
        blank after a rebalance; the rest (beyond ``max_keys``) when their next event comes."""
        self._stored = dict(stored)
        places = set(places)
        for key, blob in list(self._stored.items()):
            if len(self._loaded) >= self.max_keys:
                break
            ours = [where for where in orjson.loads(blob.split(b"\n", 1)[0]) if where in places]
            if ours:
                self._restore(key)
                self._partition_of[key] = int(ours[0].rsplit(":", 1)[1])

    def released(self) -> None:
        """Every partition went back to the group (its state saved): another worker may now restore its keys,
        so this one drops them rather than keep state that would go stale."""
        gone = list(self._loaded)
        for key in gone:
            self._forget(key)
        self._stored = {}
        self._undeleted = []  # the new owner's snapshots are not this worker's to delete
        if gone:
            log.info("released the state of %d keys of revoked partitions", len(gone))

    def retry(self, writes: Iterable[Write | Snapshot]) -> None:
        """These writes were not stored: done again at the next checkpoint (unless released by then), a
        snapshot as its key is then, a deletion as it was."""
        for write in writes:
            if isinstance(write, Write) and write.blob is None:
                self._undeleted.append(write)
            elif write.key in self._loaded:
                self._dirty.add(write.key)

    def _forget(self, key: str) -> None:
        self.fleet.forget_key(key)
        self._loaded.discard(key)
        self._dirty.discard(key)
        self._applied.pop(key, None)
        self._restored.pop(key, None)
        self._partition_of.pop(key, None)
