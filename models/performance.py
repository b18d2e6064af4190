"""Model performance: error-rate drift once labels land, and an accuracy estimate from confidence before.

``ErrorRate`` watches the 0/1 error stream of a classifier (1 = wrong) with a detector of the DDM / HDDM /
ADWIN family, keeps the running accuracy, and reports only changes of at least ``min_change`` accuracy
points. ``ConfidenceEstimate`` turns each prediction's confidence into an expected accuracy, calibrated
per confidence bin by the labels that did arrive (the idea of NannyML's CBPE, online), so a decay shows
while ground truth is still on its way.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from river import base, drift
from scipy import stats

from models.signals import BOTH, DOWN, UP, MeanShift, Shift
from models.snapshot import Snapshottable

METHODS = ("hddm_a", "hddm_w", "adwin", "ddm")


@dataclass(frozen=True, slots=True)
class RateChange:
    """A confirmed change of error rate: the evidence a performance detection carries."""

    method: str
    before_rate: float  # error rate of the settled regime before the change
    after_rate: float  # error rate over the recent window
    before_count: int
    window: int  # span of the recent (exponentially weighted) error rate
    accuracy: float  # running accuracy since the monitor started
    samples: int

    @property
    def direction(self) -> str:
        return UP if self.after_rate > self.before_rate else DOWN

    @property
    def effect_size(self) -> float:
        """The change in reference standard deviations of a 0/1 stream (floored, so 0% errors still scale)."""
        p = min(max(self.before_rate, 0.05), 0.95)
        return abs(self.after_rate - self.before_rate) / math.sqrt(p * (1 - p))

    def as_evidence(self) -> dict[str, float | int | str]:
        return {
            "statistic": f"error_rate_{self.method}",
            "before_mean": round(self.before_rate, 6),
            "after_mean": round(self.after_rate, 6),
            "before_count": self.before_count,
            "window": self.window,
            "effect_size": round(self.effect_size, 4),
            "direction": self.direction,
            "running_accuracy": round(self.accuracy, 4),
            "samples": self.samples,
        }


class ErrorRate(Snapshottable):
    """Detect a lasting change in a classifier's error rate.

    Parameters
    ----------
    method
        The detector that decides *when* the rate moved: ``"hddm_a"`` (Hoeffding bounds on means),
        ``"hddm_w"`` (on weighted means), ``"adwin"`` or ``"ddm"`` (DDM sees increases only).
    confidence
        The detector's drift confidence (HDDM's ``drift_confidence``, ADWIN's ``delta``; for DDM the
        one-sided normal quantile of ``1 - confidence`` is its ``drift_threshold``). Smaller is quieter.
    direction
        ``"up"`` (errors rose: the default, what pages) or ``"both"``.
    min_samples
        No alarm before this many labelled outcomes.
    min_change
        Smallest change of the error rate worth reporting (0.02: two accuracy points).
    window
        The reference (error rate before the change) leaves out the last ``window`` outcomes, so a change
        caught late is not already in its own yardstick; also the span of ``recent_accuracy``.
    recent
        Span of the exponentially weighted error rate taken as the new level.
    confirm
        Outcomes after the detector's signal during which the change may still reach ``min_change``.
    cooldown
        Outcomes to ignore after an alarm; the reference is then re-learnt.
    """

    def __init__(
        self,
        method: str = "adwin",
        confidence: float = 1e-4,
        direction: str = UP,
        min_samples: int = 100,
        min_change: float = 0.02,
        window: int = 200,
        recent: int = 50,
        confirm: int = 300,
        cooldown: int = 500,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        if direction not in (UP, BOTH):
            raise ValueError(f"direction must be 'up' or 'both', got {direction!r}")
        if min_samples < 1 or window < 1 or recent < 1:
            raise ValueError("min_samples, window and recent must be >= 1")
        if not 0 <= min_change < 1 or confirm < 0 or cooldown < 0:
            raise ValueError("min_change must be in [0, 1), confirm and cooldown >= 0")
        self.method = method
        self.confidence = confidence
        self.direction = direction
        self.min_samples = min_samples
        self.min_change = min_change
        self.window = window
        self.recent = recent
        self.confirm = confirm
        self.cooldown = cooldown
        self._detector = self._make_detector()
        self._samples = 0
        self._errors = 0
        self._recent: deque[int] = deque()
        self._recent_errors = 0
        self._alpha = 2.0 / (recent + 1)
        self._ew = 0.0
        self._ref_n = 0
        self._ref_errors = 0
        self._ref_from = 0
        self._pending_until = 0
        self._quiet_until = 0

    def _make_detector(self) -> base.DriftDetector:
        two_sided = self.direction == BOTH
        if self.method == "hddm_a":
            return drift.binary.HDDMA(drift_confidence=self.confidence, warning_confidence=min(0.5, self.confidence * 5),
                                      two_sided_test=two_sided)
        if self.method == "hddm_w":
            return drift.binary.HDDMW(drift_confidence=self.confidence, warning_confidence=min(0.5, self.confidence * 5),
                                      two_sided_test=two_sided)
        if self.method == "adwin":
            return drift.ADWIN(delta=self.confidence, clock=16)
        threshold = float(stats.norm.isf(self.confidence))
        return drift.binary.DDM(warning_threshold=threshold * 2 / 3, drift_threshold=threshold)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def accuracy(self) -> float | None:
        """Running accuracy over every outcome seen."""
        return 1.0 - self._errors / self._samples if self._samples else None

    @property
    def recent_accuracy(self) -> float | None:
        return 1.0 - self._recent_errors / len(self._recent) if self._recent else None

    def update(self, error: int | bool) -> RateChange | None:
        """Learn one outcome (1 or True: the prediction was wrong); return the change when just confirmed."""
        x = 1 if error else 0
        n = self._samples = self._samples + 1
        self._errors += x
        self._ew += self._alpha * (x - self._ew) if n > 1 else x - self._ew
        recent = self._recent
        recent.append(x)
        self._recent_errors += x
        if len(recent) > self.window:
            old = recent.popleft()
            self._recent_errors -= old
            # The reference lags the stream by `window` outcomes, so a change is not in its own yardstick.
            if n - self.window > self._ref_from:
                self._ref_n += 1
                self._ref_errors += old
        detector = self._detector
        detector.update(x)
        if detector.drift_detected:
            self._pending_until = n + self.confirm
        if n > self._pending_until or n < self.min_samples or n < self._quiet_until or self._ref_n < 30:
            return None
        before = self._ref_errors / self._ref_n
        after = self._ew
        change = after - before
        if (self.direction == UP and change <= 0) or abs(change) < self.min_change:
            return None
        found = RateChange(
            method=self.method,
            before_rate=before,
            after_rate=after,
            before_count=self._ref_n,
            window=self.recent,
            accuracy=1.0 - self._errors / n,
            samples=n,
        )
        self._quiet_until = n + self.cooldown
        self._pending_until = 0
        self._ref_from = n
        self._detector = self._make_detector()  # its window still spans the old regime: start it afresh
        self._ref_n = self._ref_errors = 0
        return found


class ConfidenceEstimate(Snapshottable):
    """Expected accuracy from confidence while labels are missing, calibrated by the labels that land.

    Each prediction's expected accuracy is the realised accuracy of its confidence bin, shrunk towards the
    raw confidence by ``prior`` pseudo-outcomes (so an uncalibrated bin trusts the model's own confidence
    and the estimate moves smoothly as labels arrive). A :class:`MeanShift` watches the estimate for a drop
    of at least ``min_drop``.

    Parameters
    ----------
    bins
        Confidence bins of equal width over [0, 1].
    prior
        Pseudo-outcomes at the raw confidence in each bin.
    delta, min_samples, cooldown
        Of the mean-shift signal on the estimate.
    min_drop
        Smallest drop of the estimated accuracy worth reporting (0.03: three accuracy points).
    calibration_labels
        Labels after which the calibration is frozen (also frozen by :meth:`freeze`, which the model monitor
        calls when the error rate changed). Like CBPE, the estimate assumes the link between confidence and
        accuracy holds; learning it forever would let a concept drift (which the error rate reports) move
        the estimate too, and report the same decay twice, late.
    """

    def __init__(self, bins: int = 10, prior: float = 20.0, delta: float = 1e-4, min_samples: int = 200,
                 min_drop: float = 0.03, cooldown: int = 1000, calibration_labels: int = 2000) -> None:
        if bins < 1 or min_samples < 1 or calibration_labels < 1:
            raise ValueError("bins, min_samples and calibration_labels must be >= 1")
        if prior <= 0 or not 0 < min_drop < 1 or cooldown < 0:
            raise ValueError("prior must be > 0, min_drop in (0, 1), cooldown >= 0")
        self.bins = bins
        self.prior = prior
        self.delta = delta
        self.min_samples = min_samples
        self.min_drop = min_drop
        self.cooldown = cooldown
        self.calibration_labels = calibration_labels
        self._correct = [0] * bins
        self._labelled = [0] * bins
        self._frozen = False
        self._signal = MeanShift(delta=delta, direction=DOWN, min_samples=min_samples, min_effect=0.0,
                                 min_change=min_drop, cooldown=cooldown)

    def _bin(self, confidence: float) -> int:
        return min(int(confidence * self.bins), self.bins - 1)

    @property
    def labelled(self) -> int:
        """Labelled outcomes the calibration has learnt from."""
        return sum(self._labelled)

    @property
    def estimate(self) -> float | None:
        """The recent estimated accuracy."""
        return self._signal.mean if self._signal.samples else None

    def expected(self, confidence: float) -> float:
        b = self._bin(confidence)
        return (self._correct[b] + self.prior * confidence) / (self._labelled[b] + self.prior)

    def learn(self, confidence: float, correct: bool) -> None:
        """Calibrate with one labelled outcome of a prediction made with this confidence."""
        if self._frozen:
            return
        b = self._bin(confidence)
        self._labelled[b] += 1
        self._correct[b] += bool(correct)
        self._frozen = self.labelled >= self.calibration_labels

    def freeze(self) -> None:
        """Stop calibrating: the link between confidence and accuracy is known to have changed."""
        self._frozen = True

    def update(self, confidence: float) -> Shift | None:
        """Add one unlabelled prediction; return the drop of estimated accuracy when just confirmed."""
        return self._signal.update(self.expected(confidence))
