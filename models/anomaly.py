"""An online anomaly score for one numeric metric: sequence surprise turned into a likelihood, plus range.

``SeriesAnomaly`` combines two signals, each in [0, 1]:

- **Sequence surprise.** Values are binned over the range seen so far; a small Markov model counts which
  bin follows each context of the last ``order`` bins. A value in a bin that rarely follows its context is
  surprising (raw score ``1 - P(bin | context)``). The raw scores are averaged over the last ``short``
  values, and that average is compared with its own long-run distribution (exponentially weighted over
  ``span`` values): the score is the Gaussian tail probability on a log scale, ``-log10(tail) / 10``, so
  a series that is always surprising (noise) does not score high, and a calm one that suddenly is does.
  This is the "anomaly likelihood" idea Numenta published for HTM, on a much cheaper predictor.
- **Range.** A value beyond the minimum or maximum seen so far by more than ``tolerance`` of the range
  scores 1: the per-metric thresholds are learnt online, from the extremes of the metric's history.

The score is 0 for the first ``warmup`` values. After a score of at least ``alarm``, the next ``cooldown``
values are capped just below ``alarm``, so one incident is one alarm and not a run of them.

Per value it costs a few dict look-ups (about 5 µs); memory is bounded by ``max_contexts``.
"""

from __future__ import annotations

import math
from collections import deque

from models.snapshot import Snapshottable

_SQRT2 = math.sqrt(2.0)


class SeriesAnomaly(Snapshottable):
    """Score each value of one metric in [0, 1]; high means anomalous.

    Parameters
    ----------
    bins
        Bins over the range seen so far (plus one below and one above it).
    order
        Values of context in the Markov model.
    span
        Span (values) of the long-run mean and variance of the averaged surprise.
    short
        Values over which the surprise is averaged before it is judged.
    warmup
        Values scored 0 while the model and the yardstick learn.
    tolerance
        Share of the range seen so far that a value may exceed it by without scoring 1.
    min_z
        A value beyond the range scores 1 only if it is also this many standard deviations from the mean of
        all values seen (0: no such gate); keeps a noisy metric's new records from counting as incidents.
    alarm
        Score at which the metric is anomalous (the monitor's detection threshold).
    cooldown
        Values after an alarm whose score is capped below ``alarm``.
    variance_floor
        Smallest variance of the averaged surprise, so a regular stretch does not make ordinary noise look
        extreme. At 1e-3 (a standard deviation of 0.03), stationary Gaussian noise scored as the service
        monitor scores it (``min_z`` 2) reaches the alarm about 6 times per 100,000 values instead of 17 at
        1e-4, and the NAB score is unchanged.
    max_contexts
        Contexts the Markov model learns; later ones are scored as unseen.
    """

    def __init__(self, bins: int = 24, order: int = 2, span: int = 5000, short: int = 10, warmup: int = 300,
                 tolerance: float = 0.02, min_z: float = 0.0, alarm: float = 0.45, cooldown: int = 100,
                 variance_floor: float = 1e-3, max_contexts: int = 4096) -> None:
        if min(bins, order, span, short, max_contexts) < 1 or warmup < 0 or cooldown < 0:
            raise ValueError("bins, order, span, short and max_contexts must be >= 1; warmup and cooldown >= 0")
        if tolerance < 0 or min_z < 0 or not 0 < alarm <= 1 or variance_floor <= 0:
            raise ValueError("tolerance and min_z must be >= 0, alarm in (0, 1] and variance_floor > 0")
        self.bins = bins
        self.order = order
        self.span = span
        self.short = short
        self.warmup = warmup
        self.tolerance = tolerance
        self.min_z = min_z
        self.alarm = alarm
        self.cooldown = cooldown
        self.variance_floor = variance_floor
        self.max_contexts = max_contexts
        self._n = 0
        self._x_mean = 0.0
        self._x_m2 = 0.0
        self._lo = math.inf
        self._hi = -math.inf
        self._context: deque[int] = deque(maxlen=order)
        self._counts: dict[tuple[int, ...], dict[int, int]] = {}
        self._totals: dict[tuple[int, ...], int] = {}
        self._recent: deque[float] = deque(maxlen=short)
        self._recent_sum = 0.0
        self._alpha = 2.0 / (span + 1)
        self._mean = 0.0
        self._var = 0.0
        self._judged = 0
        self._quiet_until = 0
        self.score = 0.0
        self.surprise = 0.0
        self.out_of_range = False

    @property
    def samples(self) -> int:
        return self._n

    def _bin(self, x: float) -> int:
        lo, hi = self._lo, self._hi
        if not hi > lo:
            return 0
        return max(-1, min(self.bins, int((x - lo) / (hi - lo) * self.bins)))

    def update(self, x: float) -> float:
        """Score one value, then learn it; returns the score (also in ``self.score``)."""
        n = self._n = self._n + 1
        lo, hi = self._lo, self._hi
        pad = self.tolerance * (hi - lo) if hi > lo else math.inf
        self.out_of_range = n > self.warmup and (x > hi + pad or x < lo - pad)
        if self.out_of_range and self.min_z > 0 and n > 2:
            std = math.sqrt(self._x_m2 / (n - 2))
            self.out_of_range = abs(x - self._x_mean) >= self.min_z * std
        dx = x - self._x_mean
        self._x_mean += dx / n
        self._x_m2 += dx * (x - self._x_mean)
        # Sequence surprise of x after its context, then learn the transition.
        surprise = 0.0
        if n > 1:
            b = self._bin(x)
            key = tuple(self._context)
            nexts = self._counts.get(key)
            if nexts is None:
                surprise = 1.0
                if len(self._counts) < self.max_contexts:
                    self._counts[key] = {b: 1}
                    self._totals[key] = 1
            else:
                total = self._totals[key]
                seen = nexts.get(b, 0)
                surprise = 1.0 - seen / total
                nexts[b] = seen + 1
                self._totals[key] = total + 1
            self._context.append(b)
        if x < lo:
            self._lo = x
        if x > hi:
            self._hi = x
        self.surprise = surprise
        # The averaged surprise against its own long-run distribution.
        recent = self._recent
        if len(recent) == self.short:
            self._recent_sum -= recent[0]
        recent.append(surprise)
        self._recent_sum += surprise
        average = self._recent_sum / len(recent)
        likelihood = 0.0
        if self._judged > self.warmup:
            z = (average - self._mean) / math.sqrt(max(self._var, self.variance_floor))
            tail = 0.5 * math.erfc(z / _SQRT2)
            likelihood = min(1.0, -math.log10(tail) / 10.0) if tail > 0 else 1.0
        self._judged += 1
        if self._judged == 1:
            self._mean = average
        d = average - self._mean
        self._mean += self._alpha * d
        self._var = (1.0 - self._alpha) * (self._var + self._alpha * d * d)
        score = 1.0 if self.out_of_range else likelihood
        if n <= self.warmup:
            score = 0.0
        elif n < self._quiet_until:
            score = min(score, self.alarm * 0.999)
        elif score >= self.alarm:
            self._quiet_until = n + 1 + self.cooldown
        self.score = score
        return score
