"""What the worker counts about itself, on prometheus_client; ``/metrics`` exposes ``metrics.registry``.

The agents keep their one-line call sites (``metrics.consumed[topic] += 1``): each tally is a plain
``collections.Counter`` (the demo summary and the ops views read it as a dict) that mirrors every increment
into a labelled Prometheus counter. Values that already live elsewhere (consumer lag, monitored keys,
evictions, open incidents) are read at scrape time by collectors the web views register on the registry.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client import Counter as PromCounter

from models.schema import Ticket

# Event time -> ticket publish, in seconds: from sub-second (live traffic) up to an hour (late or replayed).
# No ``*_created`` series next to every counter: scrapers do not need them and they double the page.
disable_created_metrics()

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class Tally(Counter[str]):
    """A Counter by one label whose increments also go to a Prometheus counter (decrements are refused)."""

    def __init__(self, counter: PromCounter, name: str) -> None:
        self._counter = counter
        self._name = name
        super().__init__()

    def __setitem__(self, key: str, value: int) -> None:
        delta = value - self.get(key, 0)
        if delta < 0:
            raise ValueError(f"{self._name}: a counter cannot go down ({key!r}: {delta})")
        super().__setitem__(key, value)
        if delta:
            self._counter.labels(key).inc(delta)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()

        def tally(name: str, doc: str, label: str) -> Tally:
            return Tally(PromCounter(name, doc, [label], registry=r), name)

        self.consumed = tally("emlops_events_consumed", "Input events read by the agents.", "topic")
        self.decode_failures = tally(
            "emlops_decode_failures", "Input events that failed to decode or validate.", "topic")
        self.dead_lettered = tally(
            "emlops_dead_lettered", "Messages sent to the dead-letter topic, by origin topic.", "topic")
        self.detections = tally("emlops_detections", "Detections the monitors raised.", "kind")
        self.tickets = tally("emlops_ticket_revisions", "Ticket revisions published, by status.", "status")
        self.actions = tally("emlops_operator_actions", "Operator actions accepted by the API.", "action")
        self._ticket_areas = PromCounter(
            "emlops_tickets", "Ticket revisions published, once per experience area of the ticket.",
            ["area", "priority", "status"], registry=r)
        self.latency = Histogram(
            "emlops_processing_latency_seconds",
            "From the event time of a detection's input event to the publication of the ticket revision it caused.",
            buckets=LATENCY_BUCKETS, registry=r)

    def ticket_published(self, ticket: Ticket, event_time: float | None = None, now: float | None = None) -> None:
        """Count one published revision; ``event_time`` is given when a detection caused it."""
        self.tickets[ticket.status.value] += 1
        for area in ticket.areas:
            self._ticket_areas.labels(area.value, ticket.priority, ticket.status.value).inc()
        if event_time is not None:
            self.latency.observe(max(0.0, (time.time() if now is None else now) - event_time))

    def snapshot(self) -> dict[str, Any]:
        names = ("consumed", "decode_failures", "dead_lettered", "detections", "tickets", "actions")
        return {name: dict(getattr(self, name)) for name in names}


metrics = Metrics()
