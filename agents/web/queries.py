"""Incident lists for the API: entries from the incidents table and the filters the dashboard offers.

Pure functions over the table's values (dicts), so they are tested without Faust. A table value holds the
key's current incident (``ticket`` plus its ``revisions``) and the final tickets of earlier incidents
under the same key (``previous``); history lists both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping

STATES = ("open", "resolved", "all")
STATUSES = ("triggered", "updated", "acknowledged", "resolved")
PRIORITIES = ("P1", "P2", "P3", "P4")
AREAS = ("Business", "Technical Operations", "Data Operations", "User")
MAX_LIMIT = 1000


def parse_time(value: str, name: str) -> float:
    """Epoch seconds or ISO 8601 with a time zone."""
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"'{name}' must be finite")
        return number
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{name}' must be epoch seconds or ISO 8601, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"'{name}' needs a time zone: {value[:40]!r}")
    return parsed.timestamp()


def _choices(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> frozenset[str]:
    values = frozenset(v.strip() for v in query.get(name, "").split(",") if v.strip())
    unknown = sorted(values - set(allowed))
    if unknown:
        raise ValueError(f"'{name}' has unknown value(s) {unknown}; allowed: {', '.join(allowed)}")
    return values


@dataclass(frozen=True)
class IncidentFilter:
    state: str = "all"  # open: not resolved; resolved; all
    statuses: frozenset[str] = frozenset()
    areas: frozenset[str] = frozenset()  # any of them
    priorities: frozenset[str] = frozenset()
    model: str | None = None
    source: str | None = None
    kind: str | None = None
    text: str | None = None  # case-insensitive, in summary, dedup key and labels
    since: float | None = None  # the incident was seen at or after this time
    until: float | None = None  # the incident started at or before this time
    silenced: bool | None = None
    limit: int = 200

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> IncidentFilter:
        """From URL query parameters; a bad value raises ValueError naming the parameter."""
        state = query.get("state", "all")
        if state not in STATES:
            raise ValueError(f"'state' must be one of {', '.join(STATES)}")
        silenced = query.get("silenced")
        if silenced not in (None, "", "true", "false"):
            raise ValueError("'silenced' must be true or false")
        try:
            limit = int(query.get("limit", 200))
        except ValueError:
            raise ValueError("'limit' must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"'limit' must be from 1 to {MAX_LIMIT}")
        return cls(
            state=state,
            statuses=_choices(query, "status", STATUSES),
            areas=_choices(query, "area", AREAS),
            priorities=_choices(query, "priority", PRIORITIES),
            model=query.get("model") or None,
            source=query.get("source") or None,
            kind=query.get("kind") or None,
            text=(query.get("q") or "").strip().lower() or None,
            since=parse_time(query["since"], "since") if query.get("since") else None,
            until=parse_time(query["until"], "until") if query.get("until") else None,
            silenced=None if not silenced else silenced == "true",
            limit=limit,
        )

    def matches(self, ticket: Mapping[str, Any]) -> bool:
        status = ticket.get("status")
        if self.state == "open" and status == "resolved" or self.state == "resolved" and status != "resolved":
            return False
        if self.statuses and status not in self.statuses:
            return False
        if self.areas and not self.areas.intersection(ticket.get("areas", ())):
            return False
        if self.priorities and ticket.get("priority") not in self.priorities:
            return False
        labels = ticket.get("labels") or {}
        for name, wanted in (("model", self.model), ("source", self.source)):
            if wanted is not None and wanted not in str(labels.get(name, "")).split(","):
                return False
        if self.kind is not None and self.kind not in ticket.get("kinds", ()):
            return False
        if self.silenced is not None and bool(ticket.get("silenced_by")) != self.silenced:
            return False
        seen = ticket.get("ended_at") or ticket.get("last_seen") or 0
        if self.since is not None and seen < self.since:
            return False
        if self.until is not None and (ticket.get("started_at") or 0) > self.until:
            return False
        if self.text is not None:
            haystack = " ".join([str(ticket.get("summary", "")), str(ticket.get("dedup_key", "")),
                                 *(f"{k}={v}" for k, v in labels.items())]).lower()
            if self.text not in haystack:
                return False
        return True


def entries(stored: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The incidents one table value holds: the current one, then the earlier ones, newest first."""
    ticket = stored.get("ticket")
    if isinstance(ticket, dict):
        yield {**ticket, "current": True, "revision_count": len(stored.get("revisions") or ())}
    for earlier in reversed(stored.get("previous") or ()):
        if isinstance(earlier, dict):
            yield {**earlier, "current": False}


def newest_first(ticket: Mapping[str, Any]) -> tuple[float, str]:
    return (-(ticket.get("last_seen") or 0.0), str(ticket.get("incident_id", "")))


def select(values: Iterable[Mapping[str, Any]], where: IncidentFilter) -> tuple[list[dict[str, Any]], int]:
    """Matching incidents newest first, at most ``where.limit``, and how many matched in all."""
    found = [e for stored in values for e in entries(stored) if where.matches(e)]
    found.sort(key=newest_first)
    return found[: where.limit], len(found)


def merge(pages: Iterable[tuple[list[dict[str, Any]], int]], limit: int) -> tuple[list[dict[str, Any]], int]:
    """Several workers' answers as one: newest first, deduplicated by incident id, cut to ``limit``."""
    seen: dict[str, dict[str, Any]] = {}
    total = 0
    for items, matched in pages:
        total += matched
        for item in items:
            key = str(item.get("incident_id"))
            if key not in seen or (item.get("revision") or 0) > (seen[key].get("revision") or 0):
                if key in seen:
                    total -= 1
                seen[key] = item
            else:
                total -= 1
    merged = sorted(seen.values(), key=newest_first)
    return merged[:limit], total


def silence_view(silence: Mapping[str, Any], now: float) -> dict[str, Any]:
    starts, expires = silence.get("starts_at") or 0, silence.get("expires_at")
    active = starts <= now and (expires is None or now < expires)
    return {**{k: v for k, v in silence.items() if k != "type"}, "active": active}
