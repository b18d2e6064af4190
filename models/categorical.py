"""Drift of a categorical stream: a shift in how often each category occurs, and categories never seen before.

Used for string features and for the class mix of classifiers' predictions. The reference is the first
``reference`` values (re-learnt after every alarm); the recent window is the last ``window`` values. Every
``check_every`` values a chi-square test compares the recent counts with the reference shares, and the
total variation distance (half the sum of absolute share differences) says whether the move is big enough
to matter, so a huge stream does not alarm on a statistically significant but tiny shift.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

from scipy import stats

from models.signals import MeanShift, Shift
from models.snapshot import Snapshottable

OTHER = "__other__"  # reference categories beyond max_categories
UNSEEN = "__unseen__"  # recent categories absent from the reference


@functools.lru_cache(maxsize=256)
def chi2_critical(df: int, alpha: float) -> float:
    """Upper ``alpha`` quantile of chi-square with ``df`` degrees of freedom (cached: one per category count)."""
    return float(stats.chi2.isf(alpha, max(df, 1)))


@dataclass(frozen=True, slots=True)
class CategoryChange:
    """A confirmed change of category frequencies: the evidence a detection carries."""

    statistic: str  # "chi_square" (frequency shift) or "unseen_category"
    chi_square: float
    critical: float
    distance: float  # total variation distance between reference and recent shares, in [0, 1]
    before: dict[str, float]  # reference shares of the categories that moved most
    after: dict[str, float]  # recent shares of the same categories
    new_categories: tuple[str, ...]
    reference_count: int
    window: int
    samples: int

    def as_evidence(self) -> dict[str, object]:
        return {
            "statistic": self.statistic,
            "chi_square": round(self.chi_square, 3),
            "critical": round(self.critical, 3),
            "distance": round(self.distance, 4),
            "before": {k: round(v, 4) for k, v in self.before.items()},
            "after": {k: round(v, 4) for k, v in self.after.items()},
            "new_categories": list(self.new_categories),
            "reference_count": self.reference_count,
            "window": self.window,
            "samples": self.samples,
        }


class CategoryShift(Snapshottable):
    """Detect a lasting change in the mix of a categorical stream, or the arrival of unseen categories.

    Parameters
    ----------
    reference
        Values that form the reference mix; no alarm before ``reference + window`` values (the warm-up).
    window
        Size of the recent window compared with the reference.
    alpha
        Significance of the chi-square test, per check; small because the test is repeated.
    min_distance
        Smallest total variation distance worth an alarm (0.1: a tenth of the traffic changed category).
    min_share
        Share of the recent window that categories absent from the reference must reach to be reported.
    max_categories
        Reference categories kept by name; the rarer ones are pooled, so memory stays bounded.
    check_every
        Values between two tests; the test costs O(categories).
    """

    def __init__(
        self,
        reference: int = 1000,
        window: int = 500,
        alpha: float = 1e-6,
        min_distance: float = 0.1,
        min_share: float = 0.02,
        max_categories: int = 64,
        check_every: int = 16,
    ) -> None:
        if reference < 1 or window < 1 or max_categories < 1 or check_every < 1:
            raise ValueError("reference, window, max_categories and check_every must be >= 1")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if not 0 <= min_distance <= 1 or not 0 < min_share <= 1:
            raise ValueError("min_distance must be in [0, 1] and min_share in (0, 1]")
        self.reference = reference
        self.window = window
        self.alpha = alpha
        self.min_distance = min_distance
        self.min_share = min_share
        self.max_categories = max_categories
        self.check_every = check_every
        self._samples = 0
        self._ref: dict[str, int] = {}
        self._ref_n = 0
        self._recent: deque[str] = deque()
        self._counts: dict[str, int] = {}
        self._reported: set[str] = set()

    @property
    def samples(self) -> int:
        return self._samples

    def shares(self) -> dict[str, float]:
        """Shares of each category in the recent window: what a dashboard shows."""
        n = len(self._recent) or 1
        return {k: v / n for k, v in self._counts.items()}

    def update(self, x: str) -> CategoryChange | None:
        """Learn one category; return the change when one worth reporting was just confirmed."""
        self._samples += 1
        if self._ref_n < self.reference:
            ref = self._ref
            if x in ref:
                ref[x] += 1
            elif len(ref) < self.max_categories:
                ref[x] = 1
            else:
                ref[OTHER] = ref.get(OTHER, 0) + 1
            self._ref_n += 1
            return None
        recent, counts = self._recent, self._counts
        recent.append(x)
        counts[x] = counts.get(x, 0) + 1
        if len(recent) > self.window:
            old = recent.popleft()
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
        if len(recent) < self.window or self._samples % self.check_every:
            return None
        return self._test()

    def _test(self) -> CategoryChange | None:
        ref, ref_n, counts = self._ref, self._ref_n, self._counts
        n = len(self._recent)
        pooled: dict[str, int] = {}
        unseen: dict[str, int] = {}
        for category, count in counts.items():
            if category in ref:
                pooled[category] = count
            elif OTHER in ref and len(ref) >= self.max_categories:
                pooled[OTHER] = pooled.get(OTHER, 0) + count
            else:
                unseen[category] = count
        unseen_total = sum(unseen.values())
        k = len(ref) + 1  # + the unseen bucket; half a count of smoothing keeps expected shares above 0
        norm = ref_n + 0.5 * k
        chi2 = 0.0
        distance = 0.0
        for category, ref_count in ref.items():
            p = (ref_count + 0.5) / norm
            o = pooled.get(category, 0)
            chi2 += (o - n * p) ** 2 / (n * p)
            distance += abs(o / n - ref_count / ref_n)
        p = 0.5 / norm
        chi2 += (unseen_total - n * p) ** 2 / (n * p)
        distance = 0.5 * (distance + unseen_total / n)
        critical = chi2_critical(k - 1, self.alpha)
        new = tuple(sorted(c for c, v in unseen.items()
                           if v >= max(5.0, self.min_share * n) and c not in self._reported))
        if new and unseen_total >= self.min_share * n:
            statistic = "unseen_category"
        elif chi2 >= critical and distance >= self.min_distance:
            statistic = "chi_square"
        else:
            return None
        def recent_share(c: str) -> float:
            return pooled.get(c, unseen.get(c, 0)) / n

        moved = sorted(set(ref) | set(pooled) | set(unseen), key=lambda c: -abs(recent_share(c) - ref.get(c, 0) / ref_n))[:5]
        change = CategoryChange(
            statistic=statistic,
            chi_square=chi2,
            critical=critical,
            distance=distance,
            before={c: ref.get(c, 0) / ref_n for c in moved},
            after={c: recent_share(c) for c in moved},
            new_categories=new,
            reference_count=ref_n,
            window=n,
            samples=self._samples,
        )
        if len(self._reported) < self.max_categories:
            self._reported.update(new)
        # The new mix becomes the reference, learnt from scratch: that is also the cooldown.
        self._ref, self._ref_n = {}, 0
        self._recent.clear()
        self._counts = {}
        return change


@dataclass(frozen=True, slots=True)
class ClassShift:
    """The share of one class moved: the evidence of a label (or class-mix) drift."""

    label: str
    shift: Shift
    classes: int

    def as_evidence(self) -> dict[str, object]:
        return {**self.shift.as_evidence(), "statistic": "class_share_shift", "class": self.label,
                "classes": self.classes}


class ClassMix(Snapshottable):
    """Watch the share of each class of a stream of class labels, one ADWIN mean shift per class.

    Unlike :class:`CategoryShift`, the window adapts (ADWIN), so small but lasting moves of a class's share
    (a few points) are found given enough values; ``min_change`` is the smallest move worth reporting. The
    first ``max_classes`` classes are watched. With two classes only the first is watched (the other is its
    complement), and after an alarm the other classes stay quiet for ``cooldown`` values, so one change of
    mix is one alarm.
    """

    def __init__(self, delta: float = 1e-4, min_samples: int = 100, min_change: float = 0.03,
                 cooldown: int = 1000, max_classes: int = 16) -> None:
        if max_classes < 1:
            raise ValueError(f"max_classes must be >= 1, got {max_classes}")
        MeanShift(delta=delta, min_samples=min_samples, min_change=min_change, cooldown=cooldown)  # validates
        self.delta = delta
        self.min_samples = min_samples
        self.min_change = min_change
        self.cooldown = cooldown
        self.max_classes = max_classes
        self._signals: dict[str, MeanShift] = {}
        self._seen: list[str] = []
        self._samples = 0
        self._quiet_until = 0

    def update(self, label: str) -> ClassShift | None:
        n = self._samples = self._samples + 1
        seen = self._seen
        if label not in seen and len(seen) < self.max_classes:
            seen.append(label)
            # The second class of a binary stream is the complement of the first: watched from a third on.
            for name in ([label] if len(seen) != 2 else []) + ([seen[1]] if len(seen) == 3 else []):
                self._signals[name] = MeanShift(delta=self.delta, min_samples=self.min_samples, min_effect=0.0,
                                                min_change=self.min_change, cooldown=self.cooldown)
        found: ClassShift | None = None
        for name, signal in self._signals.items():
            shift = signal.update(1.0 if label == name else 0.0)
            if shift is not None and found is None and n >= self._quiet_until:
                found = ClassShift(name, shift, len(seen))
        if found is not None:
            self._quiet_until = n + self.cooldown
        return found
