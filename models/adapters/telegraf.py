"""Telegraf's JSON serializer (``data_format = "json"``): one metric, or a batch ``{"metrics": [...]}``.

Each metric is ``{"name", "tags", "fields", "timestamp"}``. Every numeric field becomes one infrastructure
event (booleans count as 0/1; string fields are skipped):

* **source**: the first of ``source_tags`` (default ``service``, ``pipeline``, ``host``) present in the tags;
  its tag decides the kind (``pipeline`` → pipeline, ``host`` → host, any other → service) unless a
  ``source_kind`` tag or the model catalogue's topology says otherwise. A metric without any is invalid.
* **metric**: ``<name>_<field>`` (Telegraf's own Prometheus naming), or ``<name>`` for a field called
  ``value``; the remaining tags, less ``host`` and the ones above, name the series: ``cpu_usage_idle{cpu=cpu0}``.
* **model**: the ``model`` tag, else the catalogue link; **attributes**: all tags.
* **timestamp**: epoch in ``timestamp_units`` (Telegraf's ``json_timestamp_units``, default ``1s``), or an
  RFC 3339 string (``json_timestamp_format``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

from models.adapters.base import (INFRASTRUCTURE, Adapter, Event, RawHeaders, SourceLink, finite, infra_event,
                                  json_value, rfc3339, series_name)
from models.schema import SOURCE_KINDS, InvalidEvent

UNITS = {"1ns": 1e-9, "1us": 1e-6, "1µs": 1e-6, "1ms": 1e-3, "1s": 1.0}
MAX_BATCH = 10_000


class TelegrafAdapter(Adapter):
    format: ClassVar[str] = "telegraf"
    target: ClassVar[str] = INFRASTRUCTURE

    def __init__(
        self,
        *,
        source_tags: Sequence[str] = ("service", "pipeline", "host"),
        model_tag: str = "model",
        ignore_tags: Sequence[str] = ("host",),
        timestamp_units: str = "1s",
        links: Mapping[str, SourceLink] | None = None,
    ) -> None:
        if not source_tags:
            raise ValueError("source_tags must name at least one tag")
        if timestamp_units not in UNITS:
            raise ValueError(f"timestamp_units must be one of {sorted(UNITS)}, got {timestamp_units!r}")
        self.source_tags = tuple(source_tags)
        self.model_tag = model_tag
        self.ignore_tags = tuple(ignore_tags)
        self.timestamp_units = timestamp_units
        self.links = dict(links or {})
        self._scale = UNITS[timestamp_units]
        self._not_series = {*self.source_tags, model_tag, "source_kind", *self.ignore_tags}

    def translate(self, value: bytes | None, headers: RawHeaders = None, timestamp: float = 0.0) -> list[Event]:
        doc = json_value(value, "Telegraf JSON")
        if isinstance(doc, dict) and "metrics" in doc and "name" not in doc:
            metrics = doc["metrics"]
            if not isinstance(metrics, list):
                raise InvalidEvent("Telegraf batch: 'metrics' must be a list")
            if len(metrics) > MAX_BATCH:
                raise InvalidEvent(f"Telegraf batch of {len(metrics)} metrics exceeds {MAX_BATCH}")
        else:
            metrics = [doc]
        events: list[Event] = []
        for i, metric in enumerate(metrics):
            events.extend(self._metric(metric, f"metrics[{i}]" if len(metrics) > 1 else "metric"))
        return events

    def _metric(self, metric: Any, where: str) -> list[Event]:
        if not isinstance(metric, dict):
            raise InvalidEvent(f"Telegraf {where} must be an object with name, tags, fields and timestamp")
        name, tags, fields = metric.get("name"), metric.get("tags", {}), metric.get("fields")
        if not isinstance(name, str) or not name:
            raise InvalidEvent(f"Telegraf {where} needs a 'name'")
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise InvalidEvent(f"Telegraf {where} ('{name}'): 'tags' must be an object of strings")
        if not isinstance(fields, dict) or not fields:
            raise InvalidEvent(f"Telegraf {where} ('{name}'): 'fields' must be a non-empty object")
        source_tag = next((t for t in self.source_tags if tags.get(t)), None)
        if source_tag is None:
            raise InvalidEvent(f"Telegraf {where} ('{name}') has none of the source tags {list(self.source_tags)}")
        kind = tags.get("source_kind") or {"pipeline": "pipeline", "host": "host"}.get(source_tag, "service")
        if kind not in SOURCE_KINDS:
            raise InvalidEvent(f"Telegraf {where} ('{name}'): tag source_kind must be one of {SOURCE_KINDS}")
        when = self._timestamp(metric.get("timestamp"), f"{where} ('{name}')")
        series = {k: v for k, v in tags.items() if k not in self._not_series}
        events: list[Event] = []
        for field, raw in fields.items():
            number = finite(raw)
            if number is None:
                continue  # string fields (status words, versions) are not measurements
            metric_name = name if field == "value" else f"{name}_{field}"
            events.append(infra_event(
                source=tags[source_tag], source_kind=kind, metric=series_name(metric_name, series), value=number,
                timestamp=when, unit=None, model=tags.get(self.model_tag), attributes=tags, links=self.links,
            ))
        return events

    def _timestamp(self, value: Any, where: str) -> float:
        if isinstance(value, str):
            return rfc3339(value, f"{where}.timestamp")
        number = finite(value)
        if number is None or isinstance(value, bool):
            raise InvalidEvent(f"Telegraf {where} needs a numeric 'timestamp' ({self.timestamp_units} units)")
        return number * self._scale
