"""Prometheus collectors for values that already live elsewhere, read when ``/metrics`` is scraped:
consumer lag, monitored keys and evictions, open incidents, active silences, readiness."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


def faust_lag(app: Any, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Messages behind the end of each partition of ``topics`` the Faust consumer reads."""
    found = {}
    consumer, read = app.consumer, app.monitor.tp_read_offsets
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        end = consumer.highwater(tp)
        last = read.get(tp)
        if last is None:
            committed = getattr(consumer, "_committed_offset", {}).get(tp)
            last = None if committed is None else committed - 1
        if end is not None and last is not None:
            found[(tp.topic, tp.partition)] = max(0, end - (last + 1))
    return found


class WorkerCollector(Collector):
    """The callables give this worker's view of its state at scrape time."""

    def __init__(
        self,
        lag: Callable[[], Mapping[tuple[str, int], int]],
        fleets: Callable[[], dict[str, Any]],
        open_tickets: Callable[[], Iterable[dict[str, Any]]],
        silences: Callable[[], Iterable[dict[str, Any]]],
        ready: Callable[[], bool],
    ) -> None:
        self.lag = lag
        self.fleets = fleets
        self.open_tickets = open_tickets
        self.silences = silences
        self.ready = ready

    def collect(self) -> Iterator[Any]:
        for part in (self._lag, self._monitored, self._incidents, self._status):
            try:
                yield from part()
            except Exception:  # a scrape must not fail because one source is not there yet
                log.debug("metrics collector %s failed", part.__name__, exc_info=True)

    def _lag(self) -> Iterator[Any]:
        lag = GaugeMetricFamily("emlops_consumer_lag", "Messages behind the end of each assigned input partition.",
                                labels=["topic", "partition"])
        for (topic, partition), behind in sorted(self.lag().items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag

    def _monitored(self) -> Iterator[Any]:
        keys = GaugeMetricFamily("emlops_monitored_keys", "Monitors (or label joins) held in memory.",
                                 labels=["fleet"])
        evictions = CounterMetricFamily("emlops_monitor_evictions", "Least recently used monitors evicted.",
                                        labels=["fleet"])
        for name, registry in self.fleets().items():
            keys.add_metric([name], len(registry))
            evictions.add_metric([name], getattr(registry, "evictions", 0))
        yield keys
        yield evictions

    def _incidents(self) -> Iterator[Any]:
        opened = GaugeMetricFamily(
            "emlops_open_incidents", "Open incidents this worker owns, once per experience area.",
            labels=["area", "priority", "status"])
        counts: Counter[tuple[str, str, str]] = Counter()
        for ticket in self.open_tickets():
            for area in ticket.get("areas", ()):
                counts[(area, ticket.get("priority", ""), ticket.get("status", ""))] += 1
        for labels, n in sorted(counts.items()):
            opened.add_metric(list(labels), n)
        yield opened
        now = time.time()
        active = sum(
            1 for s in self.silences()
            if (s.get("starts_at") or 0) <= now and (s.get("expires_at") is None or now < s["expires_at"])
        )
        yield GaugeMetricFamily("emlops_active_silences", "Silences in force now.", value=active)

    def _status(self) -> Iterator[Any]:
        yield GaugeMetricFamily("emlops_ready", "1 when the worker is ready (tables recovered, not rebalancing).",
                                value=1 if self.ready() else 0)
