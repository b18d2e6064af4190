"""Input adapters (foreign formats → native events) and output payloads (tickets → paging tools).

Pure translators, no Kafka, Faust or HTTP, so they run the same in the agents, the unit tests and a backtest.
``build_adapter(format, options)`` makes the adapter an input topic's configuration names.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from models.adapters.base import INFRASTRUCTURE, PREDICTIONS, Adapter, SourceLink
from models.adapters.native import NativeInfrastructureAdapter, NativePredictionsAdapter
from models.adapters.otlp import OtlpAdapter
from models.adapters.payload_log import KServeAdapter, Pairing, SeldonAdapter
from models.adapters.telegraf import TelegrafAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    cls.format: cls
    for cls in (NativePredictionsAdapter, NativeInfrastructureAdapter, KServeAdapter, SeldonAdapter,
                TelegrafAdapter, OtlpAdapter)
}
FORMATS = tuple(ADAPTERS)

# Options each format accepts in its [[inputs]] entry, with their types; anything else is a config error.
OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "predictions": {},
    "infrastructure": {},
    "kserve": {"pair_ttl_s": (int, float), "max_pending": int, "model_attribute": str, "version_attribute": str,
               "prediction_output": str},
    "telegraf": {"source_tags": list, "model_tag": str, "ignore_tags": list, "timestamp_units": str},
    "otlp": {"source_attributes": list, "model_attribute": str, "max_series": int},
}
OPTIONS["seldon"] = OPTIONS["kserve"]


def target_of(format: str) -> str:
    """Which agent (predictions or infrastructure) reads a topic of this format."""
    try:
        return ADAPTERS[format].target
    except KeyError:
        raise ValueError(f"unknown input format {format!r}; known: {', '.join(FORMATS)}") from None


def check_options(format: str, options: Mapping[str, Any]) -> None:
    target_of(format)
    known = OPTIONS[format]
    for name, value in options.items():
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise ValueError(f"format {format!r} has no option {name!r} (its options: {allowed})")
        if isinstance(value, bool) or not isinstance(value, known[name]):
            raise ValueError(f"option {name!r} of format {format!r} has the wrong type {type(value).__name__}")


def build_adapter(
    format: str,
    options: Mapping[str, Any] | None = None,
    *,
    feature_names: Mapping[str, Sequence[str]] | None = None,
    links: Mapping[str, SourceLink] | None = None,
) -> Adapter:
    """A fresh adapter; ``feature_names`` (by model) and ``links`` (by source) come from the model catalogue."""
    options = dict(options or {})
    check_options(format, options)
    cls = ADAPTERS[format]
    if cls.target == PREDICTIONS and format not in ("predictions",):
        return cls(feature_names=feature_names, **options)  # type: ignore[call-arg]
    if cls.target == INFRASTRUCTURE and format not in ("infrastructure",):
        return cls(links=links, **options)  # type: ignore[call-arg]
    return cls(**options)


__all__ = ["ADAPTERS", "FORMATS", "INFRASTRUCTURE", "PREDICTIONS", "Adapter", "Pairing", "SourceLink",
           "build_adapter", "check_options", "target_of"]
