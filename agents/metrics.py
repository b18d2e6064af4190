"""Counters the worker keeps about itself; the ops views and the demo summary read them."""

from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self.consumed: Counter[str] = Counter()  # by topic
        self.dead_lettered: Counter[str] = Counter()  # by origin topic
        self.detections: Counter[str] = Counter()  # by kind
        self.tickets: Counter[str] = Counter()  # by status

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {name: dict(getattr(self, name)) for name in ("consumed", "dead_lettered", "detections", "tickets")}


metrics = Metrics()
