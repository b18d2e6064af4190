"""Which silences mute an incident's labels now: a pure check the router runs on every revision."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Mapping

from models.schema import Silence


@lru_cache(maxsize=1024)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def matches(silence: Silence, labels: Mapping[str, str], now: float) -> bool:
    if now < silence.starts_at or (silence.expires_at is not None and now >= silence.expires_at):
        return False
    for name, wanted in silence.matchers.items():
        values = labels.get(name, "").split(",")  # merged labels hold several values
        if wanted.startswith("~"):
            if not any(_pattern(wanted[1:]).fullmatch(v) for v in values):
                return False
        elif wanted not in values:
            return False
    return True


def muting(silences: Iterable[Silence], labels: Mapping[str, str], now: float) -> tuple[str, ...]:
    """Ids of the silences that mute these labels at ``now``, in a stable order."""
    return tuple(sorted(s.id for s in silences if matches(s, labels, now)))


def validate(silence: Silence) -> None:
    """Reject a silence whose regular expressions do not compile, before it is stored."""
    for name, wanted in silence.matchers.items():
        if wanted.startswith("~"):
            try:
                _pattern(wanted[1:])
            except re.error as exc:
                raise ValueError(f"matcher {name}={wanted!r} is not a valid regular expression: {exc}") from None
