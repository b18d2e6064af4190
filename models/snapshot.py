"""Versioned snapshots of monitor state, so a worker can checkpoint and resume where it stopped.

A snapshot is ``MAGIC | format version (1 byte) | class name | newline | pickle``. The header lets a
restore fail with a clear message (wrong class, a format this code does not read) instead of unpickling
something else. Pickle executes code while loading: restore only blobs this application wrote (its own
checkpoint topic or files), never input from producers.

Bump :data:`FORMAT_VERSION` when the private state of a monitor changes shape; old checkpoints are then
refused and the monitors start fresh (they re-learn their reference after the warm-up).
"""

from __future__ import annotations

import pickle
from typing import Any, TypeVar

MAGIC = b"emlops-snapshot:"
FORMAT_VERSION = 1

T = TypeVar("T")


class SnapshotError(ValueError):
    """The bytes are not a snapshot of the expected class in a format this code reads."""


def _name(cls: type) -> bytes:
    return f"{cls.__module__}.{cls.__qualname__}".encode()


def dumps(obj: Any) -> bytes:
    return MAGIC + bytes([FORMAT_VERSION]) + _name(type(obj)) + b"\n" + pickle.dumps(obj, protocol=5)


def loads(blob: bytes, cls: type[T]) -> T:
    if not isinstance(blob, (bytes, bytearray, memoryview)) or not bytes(blob[: len(MAGIC)]) == MAGIC:
        raise SnapshotError("not an emlops snapshot")
    blob = bytes(blob)
    version = blob[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise SnapshotError(f"snapshot format {version} is not readable here (this code reads {FORMAT_VERSION})")
    end = blob.index(b"\n", len(MAGIC) + 1)
    name = blob[len(MAGIC) + 1 : end]
    if name != _name(cls):
        raise SnapshotError(f"snapshot holds a {name.decode(errors='replace')}, not a {_name(cls).decode()}")
    obj = pickle.loads(blob[end + 1 :])
    if not isinstance(obj, cls):  # pragma: no cover - the header said otherwise
        raise SnapshotError(f"snapshot did not contain a {cls.__name__}")
    return obj


class Snapshottable:
    """``snapshot() -> bytes`` and ``restore(blob)`` for a monitor whose whole state pickles."""

    def snapshot(self) -> bytes:
        return dumps(self)

    @classmethod
    def restore(cls: type[T], blob: bytes) -> T:
        return loads(blob, cls)
