"""Data quality of a model's inputs: values outside their learnt range, and features that appear or vanish.

Missing and NaN values are watched by a :class:`~models.signals.MeanShift` on the share of missing values
per event (see ``ModelMonitor``); the two small watches here cover the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.snapshot import Snapshottable


@dataclass(frozen=True, slots=True)
class OutOfRange:
    low: float
    high: float
    share: float  # recent share of values outside [low, high]
    value: float  # the value that confirmed it
    samples: int

    def as_evidence(self) -> dict[str, float | int | str]:
        return {
            "statistic": "out_of_range_share",
            "share": round(self.share, 4),
            "low": round(self.low, 6),
            "high": round(self.high, 6),
            "value": self.value,
            "samples": self.samples,
        }


_NEGLIGIBLE_SHARE = 1e-6


class RangeWatch(Snapshottable):
    """Learns a numeric feature's range, then reports when values outside it become common.

    The range is the min and max of the first ``warmup`` values, widened by ``margin`` times their spread.
    An exponentially weighted share of out-of-range values (span ``span``) above ``min_share`` is reported
    once; the watch re-arms when the share falls below half of it. One odd value is not an alarm.
    """

    def __init__(self, warmup: int = 500, margin: float = 0.25, span: int = 200, min_share: float = 0.05) -> None:
        if warmup < 2 or span < 1:
            raise ValueError("warmup must be >= 2 and span >= 1")
        if margin < 0 or not 0 < min_share < 1:
            raise ValueError("margin must be >= 0 and min_share in (0, 1)")
        self.warmup = warmup
        self.margin = margin
        self.span = span
        self.min_share = min_share
        self._alpha = 2.0 / (span + 1)
        self._n = 0
        self._min = float("inf")
        self._max = float("-inf")
        self._low = float("-inf")
        self._high = float("inf")
        self._share = 0.0
        self._alarmed = False

    @property
    def share(self) -> float:
        return self._share

    @property
    def quiet_range(self) -> tuple[float, float]:
        """The values that would change nothing but the count now (an empty range while warming up or while
        the share of values outside is not 0): a caller may count such values with :meth:`passed`."""
        if self._n >= self.warmup and not self._share:
            return self._low, self._high
        return math.inf, -math.inf

    def passed(self, count: int) -> None:
        """``count`` values within :attr:`quiet_range`, counted without one call each."""
        self._n += count

    def update(self, x: float) -> OutOfRange | None:
        n = self._n = self._n + 1
        if n > self.warmup and not self._share and self._low <= x <= self._high:
            # A share of 0 means no alarm, and a value inside leaves it at 0: nothing to learn. That is nearly
            # every value of a steady feature (once a value was outside, the share decays but stays above 0).
            return None
        if n <= self.warmup:
            if x < self._min:
                self._min = x
            if x > self._max:
                self._max = x
            if n == self.warmup:
                pad = self.margin * (self._max - self._min)
                self._low, self._high = self._min - pad, self._max + pad
            return None
        outside = x < self._low or x > self._high
        share = self._share + self._alpha * (outside - self._share)
        # A share below one in a million is no evidence of anything: as 0, the feature is back in its quiet
        # range some 900 values after one odd value, not some 74,000 later when the float underflows.
        self._share = share if share >= _NEGLIGIBLE_SHARE else 0.0
        if self._alarmed:
            self._alarmed = self._share >= 0.5 * self.min_share
            return None
        if not outside or self._share < self.min_share:
            return None
        self._alarmed = True
        return OutOfRange(self._low, self._high, self._share, x, n)


@dataclass(frozen=True, slots=True)
class SchemaChange:
    change: str  # "new_feature" or "vanished_feature"
    feature: str
    events: int  # events seen by the watch
    last_seen: int  # event number the feature was last seen at (0 for a new one)
    seen: int  # events the feature appeared in

    def as_evidence(self) -> dict[str, float | int | str]:
        return {"statistic": self.change, "feature": self.feature, "events": self.events,
                "last_seen": self.last_seen, "seen": self.seen}


class SchemaWatch(Snapshottable):
    """Which features a model's events carry: names new after the warm-up, and names that stopped coming.

    A feature is new if it first appears after ``warmup`` events. It has vanished when it has been absent
    for ``vanish_after`` events and for ten times its usual gap between appearances (so an optional
    feature present in one event of fifty is not reported after fifty events). Each is reported once; a
    vanished feature re-arms when it comes back. At most ``max_features`` names are tracked; the rest are
    counted in ``untracked``.

    Events of one model mostly carry the same features: an event (a dict) naming the same tracked features
    as the one before is only counted, and the names' last event and count catch up when they are next
    read, instead of on every event.
    """

    def __init__(self, warmup: int = 200, vanish_after: int = 500, max_features: int = 2048,
                 check_every: int = 32) -> None:
        if min(warmup, vanish_after, max_features, check_every) < 1:
            raise ValueError("warmup, vanish_after, max_features and check_every must be >= 1")
        self.warmup = warmup
        self.vanish_after = vanish_after
        self.max_features = max_features
        self.check_every = check_every
        self._events = 0
        self._last: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self._vanished: set[str] = set()
        self.untracked = 0
        self._names: frozenset[str] | None = None  # the tracked names of the last event (a dict) ...
        self._repeats = 0  # ... which the events since named again, not yet counted in _last and _seen

    def __setstate__(self, state: dict) -> None:
        # A snapshot from before repeated names were counted in bulk: nothing to catch up.
        self.__dict__.update({"_names": None, "_repeats": 0, **state})

    @property
    def features(self) -> list[str]:
        return list(self._last)

    def _catch_up(self, event: int) -> None:
        """Count the events that repeated the last names, the latest of them ``event``."""
        if self._repeats:
            last, seen, repeats = self._last, self._seen, self._repeats
            for name in self._names or ():
                last[name] = event
                seen[name] += repeats
            self._repeats = 0

    def update(self, names: list[str] | tuple[str, ...] | dict[str, object]) -> list[SchemaChange]:
        n = self._events = self._events + 1
        last, seen = self._last, self._seen
        found: list[SchemaChange] = []
        is_dict = isinstance(names, dict)
        if is_dict and names.keys() == self._names:
            # None is new or vanished: each was in the last event, and a check catches up before it looks.
            self._repeats += 1
        else:
            self._catch_up(n - 1)
            untracked = self.untracked
            found = self._learn(n, names)
            # A list may name a feature twice (counted twice): only a dict's names are counted in bulk.
            self._names = frozenset(names) if is_dict and self.untracked == untracked else None
        if n > self.warmup and n % self.check_every == 0:
            self._catch_up(n)
            for name, at in last.items():
                gap = n - at
                if gap < self.vanish_after or name in self._vanished:
                    continue
                usual_gap = (at - self._first[name] + 1) / seen[name]
                if gap >= 10 * usual_gap:
                    self._vanished.add(name)
                    found.append(SchemaChange("vanished_feature", name, n, at, seen[name]))
        return found

    def _learn(self, n: int, names: list[str] | tuple[str, ...] | dict[str, object]) -> list[SchemaChange]:
        """Event ``n`` names these features: the new ones, once the warm-up is over, are reported."""
        last, seen = self._last, self._seen
        found: list[SchemaChange] = []
        for name in names:
            if name in last:
                last[name] = n
                seen[name] += 1
                if name in self._vanished:
                    self._vanished.discard(name)
                continue
            if len(last) >= self.max_features:
                self.untracked += 1
                continue
            last[name] = n
            seen[name] = 1
            self._first[name] = n
            if n > self.warmup:
                found.append(SchemaChange("new_feature", name, n, 0, 1))
        return found
