"""A univariate change detector that is safe to page on: ADWIN plus warm-up, direction, effect size, cooldown.

River's ADWIN says *that* the mean moved; on-call engineers also need *how much* and *which way*, and must
not be paged for a statistically significant but tiny shift on a huge window, nor once per event while a
change lasts. ``MeanShift`` wraps ADWIN with those gates and returns a :class:`Shift` describing the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from river import drift

from models.snapshot import Snapshottable

UP = "up"
DOWN = "down"
BOTH = "both"
_DIRECTIONS = (UP, DOWN, BOTH)


@dataclass(frozen=True, slots=True)
class Shift:
    """A confirmed change of mean: the evidence a detection carries."""

    before_mean: float
    after_mean: float
    before_count: int
    reference_std: float
    effect_size: float  # |after - before| in reference standard deviations (or relative change if std ~ 0)
    samples: int  # values seen by this signal so far

    @property
    def direction(self) -> str:
        return UP if self.after_mean > self.before_mean else DOWN

    def as_evidence(self) -> dict[str, float | int | str]:
        return {
            "statistic": "adwin_mean_shift",
            "before_mean": round(self.before_mean, 6),
            "after_mean": round(self.after_mean, 6),
            "before_count": self.before_count,
            "reference_std": round(self.reference_std, 6),
            "effect_size": round(self.effect_size, 4),
            "direction": self.direction,
            "samples": self.samples,
        }


class MeanShift(Snapshottable):
    """Detect a lasting change in the mean of a stream of numbers.

    ADWIN decides *when* the mean moved; the size of the move is then judged against a reference (mean and
    variance of the regime before) using a short exponentially weighted recent mean, because ADWIN's own
    cut is coarse and keeps mostly old values at the moment it fires. A change must reach ``min_effect``
    within ``confirm`` values of ADWIN's signal to be reported.

    Parameters
    ----------
    delta
        ADWIN's confidence; smaller means fewer false alarms and later detections.
    direction
        ``"up"``, ``"down"`` or ``"both"``: which changes are worth an alarm (a confidence rise is not).
    min_samples
        No alarm before this many values: the warm-up is explicit.
    min_effect
        Smallest change, in reference standard deviations, worth reporting; ADWIN on long windows finds
        differences nobody should be paged for.
    min_relative
        Used instead of ``min_effect`` when the reference barely varies (a constant feature that moves).
    recent
        Span, in values, of the recent mean compared with the reference.
    confirm
        Values after ADWIN's signal during which the effect may still grow to ``min_effect``.
    cooldown
        Values to ignore after an alarm, so a lasting change is reported once, not on every event.
    clock
        ADWIN checks for a cut every ``clock`` values (River's default is 32).
    min_change
        Smallest absolute change of the mean worth reporting, on top of ``min_effect`` (0: no floor); for
        rates and estimates where a move of 0.01 matters whatever the spread.
    """

    def __init__(
        self,
        delta: float = 1e-4,
        direction: str = BOTH,
        min_samples: int = 200,
        min_effect: float = 0.5,
        min_relative: float = 0.1,
        recent: int = 50,
        confirm: int = 200,
        cooldown: int = 500,
        clock: int = 16,
        min_change: float = 0.0,
    ) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if min_samples < 1 or recent < 1 or clock < 1:
            raise ValueError("min_samples, recent and clock must be >= 1")
        if min(cooldown, confirm, min_effect, min_relative) < 0:
            raise ValueError("cooldown, confirm, min_effect and min_relative must be >= 0")
        if min_change < 0:
            raise ValueError(f"min_change must be >= 0, got {min_change}")
        self.delta = delta
        self.direction = direction
        self.min_samples = min_samples
        self.min_effect = min_effect
        self.min_relative = min_relative
        self.recent = recent
        self.confirm = confirm
        self.cooldown = cooldown
        self.clock = clock
        self.min_change = min_change
        self._adwin = drift.ADWIN(delta=delta, clock=clock)
        self._alpha = 2.0 / (recent + 1)
        self._recent_mean = 0.0
        self._ref_n = 0
        self._ref_mean = 0.0
        self._ref_m2 = 0.0
        self._samples = 0
        self._pending_until = 0
        self._quiet_until = 0

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def mean(self) -> float:
        """The recent mean: what a dashboard shows as the signal's current level."""
        return self._recent_mean

    def update(self, x: float) -> Shift | None:
        """Learn one value; return the shift when a change worth reporting was just confirmed."""
        n = self._samples = self._samples + 1
        self._recent_mean = x if n == 1 else self._recent_mean + self._alpha * (x - self._recent_mean)
        adwin = self._adwin
        adwin.update(x)
        if adwin.drift_detected:
            self._pending_until = n + self.confirm
        elif n > self._pending_until:
            # Only the settled regime feeds the reference, so a change does not dilute its own yardstick.
            self._ref_n += 1
            delta = x - self._ref_mean
            self._ref_mean += delta / self._ref_n
            self._ref_m2 += delta * (x - self._ref_mean)
            return None
        if n < self.min_samples or n < self._quiet_until or self._ref_n < 2:
            return None
        change = self._recent_mean - self._ref_mean
        if (self.direction == UP and change <= 0) or (self.direction == DOWN and change >= 0):
            return None
        std = math.sqrt(self._ref_m2 / (self._ref_n - 1))
        if std > 1e-9 * max(1.0, abs(self._ref_mean)):
            effect = abs(change) / std
            worth = effect >= self.min_effect
        else:
            effect = abs(change) / max(abs(self._ref_mean), 1e-9)
            worth = effect >= self.min_relative
        if not worth or abs(change) < self.min_change:
            return None
        shift = Shift(
            before_mean=self._ref_mean,
            after_mean=self._recent_mean,
            before_count=self._ref_n,
            reference_std=std,
            effect_size=effect,
            samples=n,
        )
        # The new regime becomes the reference, learnt from scratch after the cooldown.
        self._quiet_until = n + self.cooldown
        self._pending_until = self._quiet_until
        self._ref_n, self._ref_mean, self._ref_m2 = 0, 0.0, 0.0
        return shift
