"""Monitor hyperparameters: plain numbers with defaults that work untuned, all overridable in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Mapping


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    # mean-shift signals (features, confidence, latency, errors, feedback)
    drift_delta: float = 1e-4
    drift_min_samples: int = 200
    drift_min_effect: float = 0.75
    drift_cooldown: int = 1000
    latency_min_effect: float = 2.0
    performance_min_samples: int = 100
    # categorical features and class mix of predictions (chi-square + total variation distance)
    categorical_reference: int = 1000
    categorical_window: int = 500
    categorical_alpha: float = 1e-6
    categorical_min_distance: float = 0.1
    categorical_min_share: float = 0.02
    max_categories: int = 64
    # error rate of classifiers once labels land (DDM/HDDM/ADWIN family)
    error_confidence: float = 1e-4
    error_min_change: float = 0.02
    error_window: int = 200
    error_method: str = "adwin"
    error_direction: str = "both"  # a fall of the error rate is reported too, as info (the concept changed back)
    # ground truth's class mix (label drift)
    label_min_change: float = 0.03
    # label-free accuracy estimate from confidence
    estimate_min_drop: float = 0.03
    # data quality: learnt value ranges, new and vanished features
    range_warmup: int = 500
    range_margin: float = 0.25
    range_min_share: float = 0.05
    schema_warmup: int = 200
    vanish_after: int = 500
    max_features: int = 1024
    # label join
    pending_max: int = 50_000
    pending_ttl_s: float = 24 * 3600.0
    # infrastructure anomaly model
    hst_trees: int = 10
    hst_height: int = 8
    hst_window: int = 250
    anomaly_threshold: float = 0.85
    anomaly_persistence: int = 3
    anomaly_min_z: float = 4.0
    anomaly_warmup: int = 500
    anomaly_cooldown: int = 300
    # per-metric anomaly score (models/anomaly.py SeriesAnomaly): sequence likelihood + learnt range
    series_bins: int = 24
    series_order: int = 2
    series_span: int = 5000
    series_warmup: int = 300
    series_tolerance: float = 0.02
    series_min_z: float = 2.0
    series_alarm: float = 0.45
    series_cooldown: int = 100
    max_metrics: int = 256
    seed: int = 42
    # pipeline freshness
    freshness_metrics: tuple[str, ...] = ("freshness_seconds", "data_age_seconds", "staleness_seconds")
    stale_factor: float = 3.0
    stale_min_seconds: float = 60.0
    stale_warmup: int = 20
    # memory bound on monitored keys
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        """Reject at start-up what a monitor would reject (or silently misuse) only at its first event."""
        for rule, names in _BOUNDS:
            for name in names:
                value = getattr(self, name)
                if not rule.holds(value):
                    raise ValueError(f"{name} must be {rule.text}, got {value!r}")
        if self.error_direction not in ("up", "both"):
            raise ValueError(f"error_direction must be 'up' or 'both', got {self.error_direction!r}")
        if self.error_method not in ("hddm_a", "hddm_w", "adwin", "ddm"):
            raise ValueError(f"error_method must be hddm_a, hddm_w, adwin or ddm, got {self.error_method!r}")
        if not self.freshness_metrics or not all(isinstance(m, str) and m for m in self.freshness_metrics):
            raise ValueError(f"freshness_metrics must be metric names, got {self.freshness_metrics!r}")

    def with_overrides(self, overrides: Mapping[str, Any]) -> MonitorConfig:
        """Apply overrides from a config file or the environment, rejecting names that do not exist."""
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown monitor setting(s): {', '.join(unknown)}")
        return replace(self, **{name: _typed(getattr(self, name), value) for name, value in overrides.items()})


def _typed(current: Any, value: Any) -> Any:
    """An override as the type of the default it replaces; one name for a tuple of names is a tuple of one."""
    if isinstance(current, tuple):
        return (value,) if isinstance(value, str) else tuple(value)
    number = type(current)(value)
    if isinstance(current, int) and number != float(value):
        raise ValueError(f"expected a whole number, got {value!r}")
    return number


@dataclass(frozen=True)
class _Bound:
    text: str
    holds: Callable[[Any], bool]


_BOUNDS: tuple[tuple[_Bound, tuple[str, ...]], ...] = (
    (_Bound("in (0, 1)", lambda v: 0 < v < 1),
     ("drift_delta", "anomaly_threshold", "error_confidence", "categorical_alpha", "categorical_min_distance",
      "categorical_min_share", "range_min_share", "series_alarm")),
    (_Bound(">= 1", lambda v: v >= 1),
     ("drift_min_samples", "performance_min_samples", "categorical_reference", "categorical_window",
      "max_categories", "error_window", "range_warmup", "schema_warmup", "vanish_after", "max_features",
      "pending_max", "hst_trees", "hst_height", "hst_window", "anomaly_persistence", "series_order",
      "series_span", "max_metrics", "stale_warmup", "max_keys")),
    (_Bound(">= 2", lambda v: v >= 2), ("series_bins",)),
    (_Bound("> 0", lambda v: v > 0), ("pending_ttl_s",)),
    (_Bound("> 1", lambda v: v > 1), ("stale_factor",)),
    (_Bound(">= 0", lambda v: v >= 0),
     ("drift_min_effect", "drift_cooldown", "latency_min_effect", "error_min_change", "label_min_change",
      "estimate_min_drop", "range_margin", "anomaly_min_z", "anomaly_warmup", "anomaly_cooldown",
      "series_warmup", "series_tolerance", "series_min_z", "series_cooldown", "stale_min_seconds")),
)
