"""Monitor hyperparameters: plain numbers with defaults that work untuned, all overridable in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping


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
        if not 0 < self.drift_delta < 1:
            raise ValueError(f"drift_delta must be in (0, 1), got {self.drift_delta}")
        if not 0 < self.anomaly_threshold < 1:
            raise ValueError(f"anomaly_threshold must be in (0, 1), got {self.anomaly_threshold}")
        for name in ("drift_min_samples", "pending_max", "hst_trees", "hst_height", "hst_window", "max_keys"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.error_direction not in ("up", "both"):
            raise ValueError(f"error_direction must be 'up' or 'both', got {self.error_direction!r}")
        if self.error_method not in ("hddm_a", "hddm_w", "adwin", "ddm"):
            raise ValueError(f"error_method must be hddm_a, hddm_w, adwin or ddm, got {self.error_method!r}")
        for name in ("categorical_reference", "categorical_window", "max_categories", "error_window",
                     "range_warmup", "schema_warmup", "vanish_after", "max_features"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stale_factor <= 1:
            raise ValueError(f"stale_factor must be > 1, got {self.stale_factor}")

    def with_overrides(self, overrides: Mapping[str, Any]) -> MonitorConfig:
        """Apply overrides from a config file or the environment, rejecting names that do not exist."""
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown monitor setting(s): {', '.join(unknown)}")
        typed = {k: type(getattr(self, k))(v) for k, v in overrides.items()}
        return replace(self, **typed)
