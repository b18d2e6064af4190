"""Everything watched for one service, host or data pipeline: anomaly scores per metric and joint, freshness."""

from __future__ import annotations

import math
from typing import Any

from river import preprocessing

from models.anomaly import SeriesAnomaly
from models.config import MonitorConfig
from models.half_space_trees import HalfSpaceTrees
from models.schema import Detection, DetectionKind, InfraEvent, Severity
from models.snapshot import Snapshottable


class _Moments:
    """Running mean and variance (Welford): the per-metric yardstick that explains an anomaly score."""

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

    def z(self, x: float) -> float:
        std = self.std
        if std > 1e-9 * max(1.0, abs(self.mean)):
            return (x - self.mean) / std
        return 0.0 if x == self.mean else math.copysign(1e3, x - self.mean)


class ServiceMonitor(Snapshottable):
    """Scores each new measurement on its own metric's history and against the joint state of all metrics.

    Per metric, a :class:`SeriesAnomaly` (sequence likelihood plus the range learnt online) gives the
    event's ``score`` in [0, 1]: what ``emlops backtest`` writes for a CSV series and what the NAB benchmark
    measures. Paging is stricter than the score, as below: on stationary noise a metric's new record
    scores high now and then, and one outlier is not an incident.

    HalfSpaceTrees sees the vector of every metric's latest value, scaled online to [0, 1]; it scores 0
    while its first windows fill, so nothing alarms during ``anomaly_warmup``. An alarm needs the score above
    ``anomaly_threshold`` for ``anomaly_persistence`` consecutive events *and* one metric beyond
    ``anomaly_min_z`` standard deviations of its own history, which names the metric in the ticket and keeps
    HST's scale artefacts from paging anyone.
    """

    def __init__(self, source: str, source_kind: str = "service", config: MonitorConfig | None = None):
        self.source = source
        self.source_kind = source_kind
        self.config = c = config or MonitorConfig()
        self._scaler = preprocessing.MinMaxScaler()
        self._hst = HalfSpaceTrees(
            n_trees=c.hst_trees, height=c.hst_height, window_size=c.hst_window, seed=c.seed
        )
        self._latest: dict[str, float] = {}
        self._moments: dict[str, _Moments] = {}
        self._fresh_baseline: dict[str, _Moments] = {}
        self._stale: set[str] = set()
        self._series: dict[str, SeriesAnomaly] = {}
        self.events = 0
        self.score = 0.0
        self.joint_score = 0.0
        self._streaks: dict[str, int] = {}
        self._quiet_until = 0

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
        self.joint_score = score = self._hst.score_one(scaled)
        series = self._series.get(event.metric)
        if series is None and len(self._series) < c.max_metrics:
            series = self._series[event.metric] = SeriesAnomaly(
                bins=c.series_bins, order=c.series_order, span=c.series_span, warmup=c.series_warmup,
                tolerance=c.series_tolerance, min_z=c.series_min_z, alarm=c.series_alarm, cooldown=c.series_cooldown)
        self.score = series.update(event.value) if series is not None else 0.0
        moments = self._moments.get(event.metric)
        if moments is None:
            moments = self._moments[event.metric] = _Moments()
        z = moments.z(event.value)
        high = score >= c.anomaly_threshold and abs(z) >= c.anomaly_min_z and moments.n >= 30
        # Persistence counts this metric's own consecutive anomalous readings: one outlier is not an incident.
        streak = self._streaks[event.metric] = self._streaks.get(event.metric, 0) + 1 if high else 0
        if not high:
            # Anomalous values stay out of the model and the yardstick, so a long incident stays visible.
            self._hst.learn_one(scaled)
            moments.update(event.value)
        if self.events < c.anomaly_warmup or self.events < self._quiet_until:
            return None
        if streak < c.anomaly_persistence:
            return None
        self._quiet_until = self.events + c.anomaly_cooldown
        severity = Severity.CRITICAL if abs(z) >= 2 * c.anomaly_min_z else Severity.WARNING
        metric, value, yardstick = event.metric, event.value, moments
        return Detection(
            kind=DetectionKind.INFRA_ANOMALY,
            entity={"source": self.source, "source_kind": self.source_kind, "metric": metric,
                    **({"model": event.model} if event.model else {})},
            score=round(score, 4),
            severity=severity,
            event_time=event.timestamp,
            detector="half_space_trees",
            evidence={
                "statistic": "hst_score",
                "score": round(score, 4),
                "series_score": round(self.score, 4),
                "out_of_range": bool(series is not None and series.out_of_range),
                "metric": metric,
                "value": value,
                "baseline_mean": round(yardstick.mean, 6),
                "baseline_std": round(yardstick.std, 6),
                "z": round(z, 2),
                "samples": yardstick.n,
            },
            summary=f"{metric} on {self.source} is anomalous: {value:.4g} vs usual {yardstick.mean:.4g} (z={z:.1f})",
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
            "joint_anomaly_score": round(self.joint_score, 4),
            "metrics": {k: round(v, 6) for k, v in self._latest.items()},
            "stale": sorted(self._stale),
        }
