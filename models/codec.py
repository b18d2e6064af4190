"""orjson behind one door, with the options every topic uses and one error type for bad bytes."""

from __future__ import annotations

from typing import Any

import orjson

from models.schema import InvalidEvent

MAX_MESSAGE_BYTES = 1_000_000
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def loads(raw: bytes | bytearray | memoryview | str | None) -> Any:
    """Parse one message value; anything that is not a JSON document is an :class:`InvalidEvent`."""
    if raw is None:
        raise InvalidEvent("empty message value (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent(f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=_DUMP_OPTIONS)
