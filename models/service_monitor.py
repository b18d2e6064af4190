"""Everything watched for one service, host or data pipeline: anomaly scores per metric and joint, freshness."""

from __future__ import annotations

import math
from typing import Any

from river import anomaly, preprocessing

from models.anomaly import SeriesAnomaly
from models.config import MonitorConfig
from models.schema import Detection, DetectionKind, InfraEvent, Severity
from models.snapshot import Snapshottable


class _Moments:
    """Running mean and variance (Welford): a freshness metric's usual data age."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class ServiceMonitor(Snapshottable):
    """Scores each new measurement on its own metric's history and against the joint state of all metrics.

    Per metric, a :class:`SeriesAnomaly` (sequence likelihood plus the range learnt online) gives the
    event's ``score`` in [0, 1]. That score is the detector: a reading whose score reaches ``series_alarm``
    is an ``infra_anomaly`` naming its metric (after ``series_warmup`` readings of that metric, then at most
    once per ``series_cooldown`` readings of it), so what pages is what ``emlops backtest`` writes for a CSV
    series and what the NAB benchmark scores.

    HalfSpaceTrees learns the vector of every metric's latest value, scaled online to [0, 1]. Its joint
    score (0 while its first windows fill) is worked out only when asked, for a detection's evidence and for
    :meth:`state`: it tells whether the source as a whole looks unusual or only the one metric. A detection
    is critical when the value is ``anomaly_critical_z`` standard deviations or more from its metric's mean,
    a warning otherwise.
    """

    def __init__(self, source: str, source_kind: str = "service", config: MonitorConfig | None = None):
        self.source = source
        self.source_kind = source_kind
        self.config = c = config or MonitorConfig()
        self._scaler = preprocessing.MinMaxScaler()
        self._hst = anomaly.HalfSpaceTrees(
            n_trees=c.hst_trees, height=c.hst_height, window_size=c.hst_window, seed=c.seed
        )
        self._latest: dict[str, float] = {}
        self._fresh_baseline: dict[str, _Moments] = {}
        self._stale: set[str] = set()
        self._series: dict[str, SeriesAnomaly] = {}
        self.events = 0
        self.score = 0.0

    def observe(self, event: InfraEvent) -> list[Detection]:
        self.events += 1
        if event.metric in self.config.freshness_metrics:
            found = self._observe_freshness(event)
            return [found] if found else []
        found = self._observe_anomaly(event)
        return [found] if found else []

    def _observe_anomaly(self, event: InfraEvent) -> Detection | None:
        c = self.config
        latest = self._latest
        latest[event.metric] = event.value
        self._scaler.learn_one(latest)
        scaled = self._scaler.transform_one(latest)
        series = self._series.get(event.metric)
        if series is None and len(self._series) < c.max_metrics:  # beyond the bound: in the joint model only
            series = self._series[event.metric] = SeriesAnomaly(
                bins=c.series_bins, order=c.series_order, span=c.series_span, warmup=c.series_warmup,
                tolerance=c.series_tolerance, min_z=c.series_min_z, alarm=c.series_alarm, cooldown=c.series_cooldown)
        score = self.score = series.update(event.value) if series is not None else 0.0
        # Below the alarm (or capped below it in the cooldown after one): nothing to explain, no joint score.
        joint = self._hst.score_one(scaled) if score >= c.series_alarm else None
        self._hst.learn_one(scaled)
        if series is None or joint is None:
            return None
        metric, value, z = event.metric, event.value, series.z
        return Detection(
            kind=DetectionKind.INFRA_ANOMALY,
            entity={"source": self.source, "source_kind": self.source_kind, "metric": metric,
                    **({"model": event.model} if event.model else {})},
            score=round(score, 4),
            severity=Severity.CRITICAL if abs(z) >= c.anomaly_critical_z else Severity.WARNING,
            event_time=event.timestamp,
            detector="series_anomaly",
            evidence={
                "statistic": "series_score",
                "score": round(score, 4),
                "out_of_range": series.out_of_range,
                "surprise": round(series.surprise, 4),
                "joint_score": round(joint, 4),
                "metric": metric,
                "value": value,
                "baseline_mean": round(series.baseline_mean, 6),
                "baseline_std": round(series.baseline_std, 6),
                "z": round(z, 2),
                "samples": series.samples - 1,
            },
            summary=(f"{metric} on {self.source} is anomalous: {value:.4g} vs usual {series.baseline_mean:.4g} "
                     f"(z={z:.1f}{', beyond its range so far' if series.out_of_range else ''})"),
        )

    def _observe_freshness(self, event: InfraEvent) -> Detection | None:
        """Stale when data age exceeds ``stale_factor`` times its usual level (and an absolute floor)."""
        c = self.config
        baseline = self._fresh_baseline.get(event.metric)
        if baseline is None:
            baseline = self._fresh_baseline[event.metric] = _Moments()
        limit = max(c.stale_factor * baseline.mean, c.stale_min_seconds)
        stale = baseline.n >= c.stale_warmup and event.value > limit
        if not stale:
            baseline.update(event.value)
            self._stale.discard(event.metric)
            return None
        if event.metric in self._stale:
            return None  # one detection per stale episode; it re-arms when the data is fresh again
        self._stale.add(event.metric)
        ratio = event.value / max(baseline.mean, 1e-9)
        return Detection(
            kind=DetectionKind.PIPELINE_STALE,
            entity={"source": self.source, "source_kind": self.source_kind, "metric": event.metric,
                    **({"model": event.model} if event.model else {})},
            score=round(1.0 - 1.0 / ratio, 4) if ratio > 1 else 0.0,
            severity=Severity.CRITICAL if ratio >= 2 * c.stale_factor else Severity.WARNING,
            event_time=event.timestamp,
            detector="freshness_threshold",
            evidence={
                "statistic": "data_age",
                "value": event.value,
                "usual": round(baseline.mean, 3),
                "limit": round(limit, 3),
                "ratio": round(ratio, 2),
                "samples": baseline.n,
            },
            summary=f"{self.source} is stale: data is {event.value:.0f}s old (usually {baseline.mean:.0f}s)",
        )

    def state(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_kind": self.source_kind,
            "events": self.events,
            "anomaly_score": round(self.score, 4),
            "joint_anomaly_score": round(self._hst.score_one(self._scaler.transform_one(self._latest)), 4)
            if self._latest else 0.0,
            "metrics": {k: round(v, 6) for k, v in self._latest.items()},
            "stale": sorted(self._stale),
        }
