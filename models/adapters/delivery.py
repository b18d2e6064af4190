"""The decisions of delivering a ticket to a sink, without the I/O: which tickets go where, whether a
response calls for a retry, and how long to wait before the next attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

PRIORITIES = ("P1", "P2", "P3", "P4")
STATUSES = ("triggered", "updated", "acknowledged", "resolved")


@dataclass(frozen=True, slots=True)
class Route:
    """Which tickets a sink receives. Empty sets match everything; all given conditions must hold.

    ``areas`` matches a ticket with any of them among its areas; ``priorities`` and ``statuses`` its
    current priority and status; ``labels`` requires these exact entity labels (e.g. ``model``).
    Priorities only escalate and areas only grow, so once an incident reaches a sink, its later revisions,
    including the resolution, do too.
    """

    areas: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.priorities) - set(PRIORITIES)
        if unknown:
            raise ValueError(f"unknown priorities {sorted(unknown)}; use {', '.join(PRIORITIES)}")
        unknown = set(self.statuses) - set(STATUSES)
        if unknown:
            raise ValueError(f"unknown statuses {sorted(unknown)}; use {', '.join(STATUSES)}")

    def matches(self, ticket: Mapping[str, Any]) -> bool:
        if self.areas and not self.areas.intersection(ticket.get("areas", ())):
            return False
        if self.priorities and ticket.get("priority") not in self.priorities:
            return False
        if self.statuses and ticket.get("status") not in self.statuses:
            return False
        labels = ticket.get("labels", {})
        return all(labels.get(k) == v for k, v in self.labels.items())


def pages(ticket: Mapping[str, Any]) -> bool:
    """Whether a revision should reach a pager at all: silenced incidents and incidents explained by an
    open upstream incident (``caused_by``, which pages itself) are recorded on the incidents topic but page
    nobody. Resolutions always go out, so a receiver can close whatever it had opened."""
    if ticket.get("status") == "resolved":
        return True
    return not (ticket.get("silenced_by") or ticket.get("caused_by"))


OK, RETRY, FAIL = "ok", "retry", "fail"


def classify(status: int | None) -> str:
    """What an HTTP outcome means for a delivery: ``None`` is a network error or timeout.

    2xx is done; 408, 429 and 5xx are worth retrying (PagerDuty's documented retry table, and
    Alertmanager's own rule for webhooks); any other status will not change by retrying.
    """
    if status is None:
        return RETRY
    if 200 <= status < 300:
        return OK
    if status in (408, 425, 429) or status >= 500:
        return RETRY
    return FAIL


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``initial_s * multiplier**(attempt-1)`` capped at ``max_s``; give up after
    ``max_attempts`` attempts or once ``give_up_after_s`` have passed since the first one."""

    initial_s: float = 1.0
    max_s: float = 60.0
    multiplier: float = 2.0
    max_attempts: int = 20
    give_up_after_s: float = 900.0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.max_attempts < 1 or self.give_up_after_s <= 0:
            raise ValueError("max_attempts must be >= 1 and give_up_after_s > 0")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_s, self.initial_s * self.multiplier ** (attempt - 1))

    def gives_up(self, attempts: int, elapsed_s: float) -> bool:
        """True when no further attempt may start, after ``attempts`` failures over ``elapsed_s``."""
        return attempts >= self.max_attempts or elapsed_s + self.delay(attempts) > self.give_up_after_s
