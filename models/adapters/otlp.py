"""OpenTelemetry metrics in OTLP/JSON (``ExportMetricsServiceRequest``: ``resourceMetrics`` → ``scopeMetrics``
→ ``metrics``), as the Collector's Kafka exporter writes them with ``encoding: otlp_json``.

* **source**: the first of ``source_attributes`` (default ``service.name``, ``host.name``) among the resource
  attributes; ``service.name`` makes a service, ``host.name`` a host. An ``emlops.source_kind`` resource
  attribute or the catalogue's topology can say ``pipeline``. A resource without any is invalid.
* **model**: the ``model_attribute`` resource attribute (default ``emlops.model``), else the catalogue link.
* **gauge** points and non-monotonic **sum** points: the value, as ``<name>`` (``asDouble`` or ``asInt``,
  which OTLP/JSON may write as a string).
* monotonic **sum**: with delta temporality the value; with cumulative temporality the increase since the
  previous point of the same series (the first point, and a point after a counter reset, give none).
* **histogram**: ``<name>.count`` and ``<name>.mean`` (sum / count) for the interval, cumulative ones
  differenced like sums.
* Data point attributes name the series (``system.cpu.utilization{cpu=0,state=idle}``); points flagged
  ``NO_RECORDED_VALUE`` and other metric types (exponential histograms, summaries) are skipped and counted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, Mapping, Sequence

from models.adapters.base import (INFRASTRUCTURE, Adapter, Event, RawHeaders, SourceLink, finite, infra_event,
                                  json_value, series_name)
from models.schema import SOURCE_KINDS, InvalidEvent

DELTA, CUMULATIVE = 1, 2
NO_RECORDED_VALUE = 1
MAX_POINTS = 10_000


def _any_value(value: Any) -> str | None:
    """An OTLP ``AnyValue`` as text (arrays and maps are not identity, so they are left out)."""
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in value:
            v = value[key]
            return str(v).lower() if key == "boolValue" else str(v)
    return None


def _attributes(items: Any, where: str) -> dict[str, str]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidEvent(f"OTLP {where}.attributes must be a list of key/value pairs")
    out = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidEvent(f"OTLP {where}.attributes has an entry without a 'key'")
        text = _any_value(item.get("value"))
        if text is not None:
            out[item["key"]] = text
    return out


def _int64(value: Any, where: str) -> int:
    """OTLP/JSON writes 64-bit integers as decimal strings; plain numbers are accepted too."""
    if isinstance(value, bool):
        raise InvalidEvent(f"OTLP {where} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise InvalidEvent(f"OTLP {where} must be an integer (or its decimal string), got {value!r:.40}")


class OtlpAdapter(Adapter):
    format: ClassVar[str] = "otlp"
    target: ClassVar[str] = INFRASTRUCTURE

    def __init__(
        self,
        *,
        source_attributes: Sequence[str] = ("service.name", "host.name"),
        model_attribute: str = "emlops.model",
        max_series: int = 100_000,
        links: Mapping[str, SourceLink] | None = None,
    ) -> None:
        if not source_attributes:
            raise ValueError("source_attributes must name at least one attribute")
        if max_series < 1:
            raise ValueError(f"max_series must be >= 1, got {max_series}")
        self.source_attributes = tuple(source_attributes)
        self.model_attribute = model_attribute
        self.max_series = max_series
        self.links = dict(links or {})
        # cumulative series: (source, series, field) -> (start time, last value), least recently seen first
        self._last: OrderedDict[tuple[str, str, str], tuple[int, float]] = OrderedDict()
        self.skipped = 0
        self.resets = 0

    def translate(self, value: bytes | None, headers: RawHeaders = None, timestamp: float = 0.0) -> list[Event]:
        doc = json_value(value, "OTLP JSON")
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceMetrics"), list):
            raise InvalidEvent("OTLP JSON metrics need a 'resourceMetrics' list")
        events: list[Event] = []
        for r, resource_metrics in enumerate(doc["resourceMetrics"]):
            where = f"resourceMetrics[{r}]"
            if not isinstance(resource_metrics, dict):
                raise InvalidEvent(f"OTLP {where} must be an object")
            resource = resource_metrics.get("resource") or {}
            attributes = _attributes(resource.get("attributes"), f"{where}.resource")
            source_attr = next((a for a in self.source_attributes if attributes.get(a)), None)
            if source_attr is None:
                raise InvalidEvent(f"OTLP {where}: the resource has none of the attributes {list(self.source_attributes)}")
            source = attributes[source_attr]
            kind = attributes.get("emlops.source_kind") or ("host" if source_attr == "host.name" else "service")
            if kind not in SOURCE_KINDS:
                raise InvalidEvent(f"OTLP {where}: emlops.source_kind must be one of {SOURCE_KINDS}")
            context = (source, kind, attributes.get(self.model_attribute), attributes)
            for s, scope_metrics in enumerate(resource_metrics.get("scopeMetrics") or []):
                metrics = scope_metrics.get("metrics") if isinstance(scope_metrics, dict) else None
                if not isinstance(metrics, list):
                    raise InvalidEvent(f"OTLP {where}.scopeMetrics[{s}] needs a 'metrics' list")
                for m, metric in enumerate(metrics):
                    events.extend(self._metric(metric, f"{where}.scopeMetrics[{s}].metrics[{m}]", context))
                    if len(events) > MAX_POINTS:
                        raise InvalidEvent(f"OTLP message has more than {MAX_POINTS} data points")
        return events

    def _metric(self, metric: Any, where: str, context: tuple[str, str, str | None, dict[str, str]]) -> list[Event]:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or not metric["name"]:
            raise InvalidEvent(f"OTLP {where} needs a 'name'")
        name, unit = metric["name"], metric.get("unit") or None
        if "gauge" in metric:
            kind, data = "gauge", metric["gauge"]
        elif "sum" in metric:
            kind, data = "sum", metric["sum"]
        elif "histogram" in metric:
            kind, data = "histogram", metric["histogram"]
        else:
            self.skipped += 1
            return []
        points = data.get("dataPoints") if isinstance(data, dict) else None
        if not isinstance(points, list):
            raise InvalidEvent(f"OTLP {where} ('{name}'): {kind} needs a 'dataPoints' list")
        temporality = data.get("aggregationTemporality", 0)
        cumulative = temporality in (CUMULATIVE, "AGGREGATION_TEMPORALITY_CUMULATIVE")
        monotonic = bool(data.get("isMonotonic", False))
        events: list[Event] = []
        for p, point in enumerate(points):
            at = f"{where}.dataPoints[{p}]"
            if not isinstance(point, dict):
                raise InvalidEvent(f"OTLP {at} must be an object")
            if _int64(point.get("flags", 0), f"{at}.flags") & NO_RECORDED_VALUE:
                self.skipped += 1
                continue
            when = _int64(point.get("timeUnixNano"), f"{at}.timeUnixNano") / 1e9
            start = _int64(point.get("startTimeUnixNano", 0), f"{at}.startTimeUnixNano")
            series = series_name(name, _attributes(point.get("attributes"), at))
            for metric_name, value in self._values(kind, point, at, series, start, cumulative, monotonic, context[0]):
                events.append(infra_event(
                    source=context[0], source_kind=context[1], metric=metric_name, value=value, timestamp=when,
                    unit=None if kind == "histogram" and metric_name.split("{", 1)[0].endswith(".count") else unit,
                    model=context[2],
                    attributes=context[3], links=self.links,
                ))
        return events

    def _values(self, kind: str, point: dict[str, Any], at: str, series: str, start: int, cumulative: bool,
                monotonic: bool, source: str) -> list[tuple[str, float]]:
        if kind in ("gauge", "sum"):
            if "asDouble" in point:
                value = finite(point["asDouble"])
                if value is None or isinstance(point["asDouble"], bool):
                    self.skipped += 1  # NaN/Inf are written as strings; they measure nothing
                    return []
            elif "asInt" in point:
                value = float(_int64(point["asInt"], f"{at}.asInt"))
            else:
                raise InvalidEvent(f"OTLP {at} has neither 'asDouble' nor 'asInt'")
            if kind == "sum" and cumulative and monotonic:
                delta = self._delta(source, series, "value", start, value)
                return [] if delta is None else [(series, delta)]
            return [(series, value)]
        count = float(_int64(point.get("count", 0), f"{at}.count"))
        total = finite(point.get("sum"))
        if cumulative:
            d_count = self._delta(source, series, "count", start, count)
            d_sum = self._delta(source, series, "sum", start, total) if total is not None else None
            if d_count is None:
                return []
            count, total = d_count, d_sum
        base = series.split("{", 1)
        suffix = "{" + base[1] if len(base) == 2 else ""
        values = [(f"{base[0]}.count{suffix}", count)]
        if total is not None and count > 0:
            values.append((f"{base[0]}.mean{suffix}", total / count))
        return values

    def _delta(self, source: str, series: str, field: str, start: int, value: float) -> float | None:
        key = (source, series, field)
        previous = self._last.pop(key, None)
        self._last[key] = (start, value)
        if len(self._last) > self.max_series:
            self._last.popitem(last=False)
        if previous is None:
            return None
        if previous[0] != start or value < previous[1]:
            self.resets += 1
            return None
        return value - previous[1]

    def stats(self) -> dict[str, int]:
        return {"series": len(self._last), "skipped": self.skipped, "resets": self.resets}
