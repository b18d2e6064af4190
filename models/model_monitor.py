"""Everything watched for one model version: its inputs, outputs, latency and, once labels land, its errors."""

from __future__ import annotations

import math
from typing import Any

from models.config import MonitorConfig
from models.schema import Detection, DetectionKind, LabelEvent, PredictionEvent, Scalar, Severity
from models.signals import BOTH, DOWN, UP, MeanShift, Shift


def shift_severity(effect: float, critical_effect: float = 2.0) -> tuple[float, Severity]:
    """Score in [0, 1) and severity grow with the effect size, so a 5-sigma move outranks a 1-sigma one."""
    score = 1.0 - math.exp(-effect / 2.0)
    return round(score, 4), Severity.CRITICAL if effect >= critical_effect else Severity.WARNING


def _numeric(value: Scalar) -> float | None:
    """Numbers and booleans are monitored as numbers; NaN counts as missing."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


class ModelMonitor:
    """Per model + version (+ segment) monitors, created lazily as features appear.

    Feature drift and missing values are Data Operations' concern, confidence and feedback the users',
    latency Technical Operations', and error-rate changes everyone's: the kinds say which, routing decides.
    """

    def __init__(self, model: str, version: str, segment: str | None = None, config: MonitorConfig | None = None):
        self.model = model
        self.version = version
        self.segment = segment
        self.config = config or MonitorConfig()
        self._features: dict[str, MeanShift] = {}
        self._missing = self._signal(UP)
        self._confidence = self._signal(DOWN)
        self._prediction = self._signal(BOTH)
        self._latency = self._signal(UP, min_effect=self.config.latency_min_effect)
        self._errors = self._signal(UP, min_samples=self.config.performance_min_samples)
        self._feedback = self._signal(DOWN, min_samples=self.config.performance_min_samples)
        self.predictions = 0
        self.labelled = 0
        self.correct = 0

    def _signal(self, direction: str, min_effect: float | None = None, min_samples: int | None = None) -> MeanShift:
        c = self.config
        return MeanShift(
            delta=c.drift_delta,
            direction=direction,
            min_samples=min_samples or c.drift_min_samples,
            min_effect=c.drift_min_effect if min_effect is None else min_effect,
            cooldown=c.drift_cooldown,
        )

    @property
    def labels(self) -> dict[str, str]:
        labels = {"model": self.model, "version": self.version}
        if self.segment:
            labels["segment"] = self.segment
        return labels

    def _detection(
        self, kind: DetectionKind, shift: Shift, t: float, summary: str, critical_effect: float = 2.0, **extra: str
    ) -> Detection:
        score, severity = shift_severity(shift.effect_size, critical_effect)
        return Detection(
            kind=kind,
            entity={**self.labels, **extra},
            score=score,
            severity=severity,
            event_time=t,
            detector="adwin_mean_shift",
            evidence=shift.as_evidence(),
            summary=summary,
        )

    def observe_prediction(self, event: PredictionEvent) -> list[Detection]:
        self.predictions += 1
        found: list[Detection] = []
        t = event.timestamp
        missing = 0
        for name, raw in event.features.items():
            value = _numeric(raw)
            if value is None:
                missing += raw is None or isinstance(raw, float)
                continue
            signal = self._features.get(name)
            if signal is None:
                signal = self._features[name] = self._signal(BOTH)
            shift = signal.update(value)
            if shift is not None:
                found.append(
                    self._detection(
                        DetectionKind.FEATURE_DRIFT, shift, t,
                        f"feature '{name}' of {self.model} v{self.version} drifted {shift.direction} "
                        f"({shift.before_mean:.4g} -> {shift.after_mean:.4g})",
                        feature=name,
                    )
                )
        if event.features:
            shift = self._missing.update(missing / len(event.features))
            if shift is not None:
                found.append(self._detection(
                    DetectionKind.DATA_QUALITY, shift, t,
                    f"missing feature values on {self.model} v{self.version} rose to {shift.after_mean:.1%}",
                ))
        self._observe(self._confidence, event.confidence, DetectionKind.CONFIDENCE_DROP, t, found,
                      "confidence of {m} fell ({b:.3f} -> {a:.3f})")
        self._observe(self._latency, event.latency_ms, DetectionKind.LATENCY_SPIKE, t, found,
                      "latency of {m} rose ({b:.1f} ms -> {a:.1f} ms)", critical_effect=5.0)
        self._observe(self._prediction, _numeric(event.prediction), DetectionKind.PREDICTION_DRIFT, t, found,
                      "predictions of {m} drifted ({b:.4g} -> {a:.4g})")
        return found

    def _observe(
        self, signal: MeanShift, value: float | None, kind: DetectionKind, t: float,
        found: list[Detection], template: str, critical_effect: float = 2.0,
    ) -> None:
        if value is None:
            return
        shift = signal.update(value)
        if shift is not None:
            summary = template.format(m=f"{self.model} v{self.version}", b=shift.before_mean, a=shift.after_mean)
            found.append(self._detection(kind, shift, t, summary, critical_effect))

    def observe_outcome(self, prediction: Any, label: LabelEvent) -> list[Detection]:
        """Learn from ground truth or feedback joined to an earlier prediction of this model version."""
        found: list[Detection] = []
        t = label.timestamp
        if label.label is not None:
            self.labelled += 1
            error = _error(prediction, label.label)
            self.correct += error == 0.0
            self._observe(self._errors, error, DetectionKind.PERFORMANCE_DRIFT, t, found,
                          "error of {m} rose ({b:.3f} -> {a:.3f})", critical_effect=1.0)
            if found:
                found[-1].evidence["running_accuracy"] = round(self.correct / self.labelled, 4)
                found[-1].evidence["labelled"] = self.labelled
        self._observe(self._feedback, label.feedback, DetectionKind.NEGATIVE_FEEDBACK, t, found,
                      "user feedback on {m} worsened ({b:.2f} -> {a:.2f})")
        return found

    def state(self) -> dict[str, Any]:
        """What the ops views show for this model: current levels and sample counts."""
        return {
            **self.labels,
            "predictions": self.predictions,
            "labelled": self.labelled,
            "accuracy": round(self.correct / self.labelled, 4) if self.labelled else None,
            "confidence": round(self._confidence.mean, 4) if self._confidence.samples else None,
            "latency_ms": round(self._latency.mean, 3) if self._latency.samples else None,
            "features": {name: round(s.mean, 6) for name, s in self._features.items()},
        }


def _error(prediction: Any, label: Scalar) -> float:
    """0/1 for classes; absolute error when both sides are real-valued (a regression model)."""
    p, y = _numeric(prediction), _numeric(label)
    regression = (
        p is not None and y is not None and not isinstance(prediction, bool)
        and not (float(p).is_integer() and float(y).is_integer())
    )
    if regression:
        return abs(p - y)  # type: ignore[operator]
    return 0.0 if prediction == label else 1.0
