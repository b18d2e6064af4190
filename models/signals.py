"""A univariate change detector that is safe to page on: ADWIN plus warm-up, direction, effect size, cooldown.

River's ADWIN says *that* the mean moved; on-call engineers also need *how much* and *which way*, and must
not be paged for a statistically significant but tiny shift on a huge window, nor once per event while a
change lasts. ``MeanShift`` wraps ADWIN with those gates and returns a :class:`Shift` describing the change.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from river import drift

from models.snapshot import Snapshottable

try:
    from models import _numeric  # the learning step and ADWIN's window compiled (models/_numeric.c), if built
except ImportError:  # pragma: no cover - installed without a C compiler: the numpy path, same results
    _numeric = None

if TYPE_CHECKING:
    from river._river_rust.drift import AdaptiveWindowing

UP = "up"
DOWN = "down"
BOTH = "both"
_DIRECTIONS = (UP, DOWN, BOTH)
_LOCATE_Z2 = 16.0  # a change point among the held values is trusted from a z of 4 (noise rarely gets there)


def adaptive_window(delta: float, clock: int) -> AdaptiveWindowing | _numeric.Window:
    """ADWIN's window without River's Python wrapper: an object whose ``update`` returns whether it
    detected a drift.

    ``ADWIN.update`` costs a Python call and two property reads around the compiled update, twice per
    value of every numeric feature. River's ADWIN starts a new window at the update after a drift; a caller
    of this one replaces it itself right away, which is the same since nothing reads the old window in
    between. Where ``models/_numeric.c`` was built this is its port of River's window, which the compiled
    learning step updates without a Python call per value; otherwise River's own compiled window. Either
    way River's defaults (buckets, minimum sub-window, grace period) hold, and ``test_signals`` checks that
    both answer and hold exactly what River's ADWIN does.
    """
    if _WINDOW is not None:
        return _WINDOW(delta, clock, *_RIVER_DEFAULTS)
    return drift.ADWIN(delta=delta, clock=clock)._helper


_WINDOW = None if _numeric is None else _numeric.Window
_RIVER_DEFAULTS = (lambda adwin: (adwin.max_buckets, adwin.min_window_length, adwin.grace_period))(drift.ADWIN())


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

    ADWIN decides *when* the mean moved, but notices a change only some values after it happened (it checks
    every ``clock`` values, and a small change takes longer). So the latest ``lag`` values are held back from
    the reference (mean and variance of the regime before): at ADWIN's signal the change point is located
    among them, the values before it join the reference and those since it are the new regime, which the
    reference does not learn. The shift reported is the mean of the values since the change point against
    that reference: a jump reads at its size although ADWIN fires a few values after it, and a constant
    reference stays constant.

    Whether the move is worth reporting is judged cautiously, as though nothing had changed: a short
    exponentially weighted recent mean must reach ``min_effect`` within ``confirm`` values of ADWIN's
    signal, in the mean and standard deviation of everything seen until the signal (the reference and the
    values since the change point). A burst of outliers that makes ADWIN fire widens that yardstick
    instead of passing for a new level, and the recent mean, unlike the mean since a change point located
    to fit the values, does not pick the most extreme stretch when ADWIN fires on noise. A change of a
    constant reference is judged by the mean since the change point (``min_relative``). If the change is
    not confirmed, the values before the signal rejoin the reference.

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
        Used instead of ``min_effect`` when the reference does not vary (a constant feature that moves): the
        smallest change of the mean since the change point, relative to the reference mean.
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
    lag
        Latest values held back from the reference, among which ADWIN's signal locates the change point;
        a change ADWIN notices later than that leaks its first values into the reference.
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
        lag: int = 128,
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
        if lag < 1:
            raise ValueError(f"lag must be >= 1, got {lag}")
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
        self.lag = lag
        self._window = adaptive_window(delta, clock)
        self._alpha = 2.0 / (recent + 1)
        self._recent_mean = 0.0
        self._held = array("d", bytes(8 * lag))  # the latest values: value number i at i % lag
        self._ref_n = 0
        self._ref_mean = 0.0
        self._ref_m2 = 0.0
        self._samples = 0
        # While a change is pending: the values since the change point (their count and the sum of their
        # deviations from the reference mean) and the gate's yardstick (count, mean, sum of squares).
        self._after_n = 0
        self._after_sum = 0.0
        self._gate_n = 0
        self._gate_mean = 0.0
        self._gate_m2 = 0.0
        self._pending_until = 0  # values up to this number never join the reference (a change, a cooldown)
        self._quiet_until = 0

    def __setstate__(self, state: dict) -> None:
        # A snapshot taken before values were held back: its reference holds every value seen, which is also
        # the yardstick of a change it had pending.
        if "_held" not in state:
            pending = state["_samples"] <= state["_pending_until"]
            state = {**state, "lag": 128, "_held": array("d", bytes(8 * 128)), "_after_n": 0, "_after_sum": 0.0,
                     "_gate_n": state["_ref_n"] if pending else 0, "_gate_mean": state["_ref_mean"],
                     "_gate_m2": state["_ref_m2"], "_pending_until": max(state["_pending_until"], state["_samples"])}
        if "_adwin" in state:
            # A snapshot that held River's ADWIN: its compiled window, or a new one if River was about to
            # start one (the update after a drift).
            state = dict(state)
            adwin = state.pop("_adwin")
            state["_window"] = adaptive_window(state["delta"], state["clock"]) if adwin.drift_detected else adwin._helper
        self.__dict__.update(state)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def mean(self) -> float:
        """The recent mean: what a dashboard shows as the signal's current level."""
        return self._recent_mean

    def _learn(self, x: float) -> None:
        self._ref_n += 1
        delta = x - self._ref_mean
        self._ref_mean += delta / self._ref_n
        self._ref_m2 += delta * (x - self._ref_mean)

    def _locate(self, n: int) -> None:
        """At ADWIN's signal, split the held values not in the reference where a change of mean best
        explains them: those before the change point join the reference, those since it start the new
        regime; the gate's yardstick is the reference with them."""
        held, lag = self._held, self.lag
        first = max(n - lag + 1, self._pending_until + 1, 1)
        values = [held[j % lag] for j in range(first, n + 1)]
        count = self._ref_n + len(values)
        total = self._ref_n * self._ref_mean + sum(values)
        best, cut, after = 0.0, 0, 0.0
        for k in range(1, min(len(values), count - 1) + 1):  # k values since the split, at least one before
            after += values[-k]
            diff = after / k - (total - after) / (count - k)
            score = k * (count - k) / count * diff * diff  # the split's squared z, times the variance
            if score > best:
                best, cut = score, len(values) - k
        if self._ref_n > 1 and best < _LOCATE_Z2 * self._ref_m2 / (self._ref_n - 1):
            cut = 0  # no convincing split: the change is older than the held values, all of them after it
        for x in values[:cut]:
            self._learn(x)
        base = self._ref_mean  # frozen while the change is pending
        since = [x - base for x in values[cut:]]
        self._after_n, self._after_sum = len(since), sum(since)
        # The gate's yardstick: the reference with the values since the change point that came before the
        # signal (the parallel update of mean and sum of squares of Chan et al.).
        before = since[:-1]
        total, squares = sum(before), sum(d * d for d in before)
        gate_n = self._gate_n = self._ref_n + len(before)
        self._gate_mean = base + total / gate_n if gate_n else base
        self._gate_m2 = max(self._ref_m2 + squares - total * total / gate_n, 0.0) if gate_n else 0.0

    def update(self, x: float) -> Shift | None:
        """Learn one value; return the shift when a change worth reporting was just confirmed.

        Runs for every value of every numeric feature: while no change is pending (nearly always) it only
        learns the value and asks ADWIN, and the judging is left to :meth:`_judge`.
        """
        n = self._samples = self._samples + 1
        recent = self._recent_mean
        self._recent_mean = recent + self._alpha * (x - recent) if n > 1 else x
        pending_until = self._pending_until
        held = self._held
        lag = self.lag
        i = n % lag
        if n > pending_until:
            if self._gate_n:
                # The change was not confirmed: the values that came before the signal were the settled regime.
                self._ref_n, self._ref_mean, self._ref_m2 = self._gate_n, self._gate_mean, self._gate_m2
                self._gate_n = 0
            if n - lag > pending_until:
                # The oldest held value is from the settled regime: it joins the reference (Welford's update).
                oldest = held[i]
                count = self._ref_n = self._ref_n + 1
                mean = self._ref_mean
                delta = oldest - mean
                mean = self._ref_mean = mean + delta / count
                self._ref_m2 += delta * (oldest - mean)
        held[i] = x
        if self._window.update(x):
            return self._fired(n, x)
        if n > pending_until:
            return None
        self._follow(x)
        return self._judge(n)

    def _fired(self, n: int, x: float) -> Shift | None:
        """ADWIN signalled at value number ``n`` (``x``), already learnt: locate the change, or follow it."""
        self._window = adaptive_window(self.delta, self.clock)
        if n > self._pending_until:
            self._locate(n)
        else:
            self._follow(x)
        self._pending_until = n + self.confirm
        return self._judge(n)

    def _judge(self, n: int) -> Shift | None:
        """While a change is pending: the shift if it is now worth reporting (then the new regime becomes the
        reference, learnt from scratch after the cooldown)."""
        m = self._after_n
        if n < self.min_samples or n < self._quiet_until or self._gate_n < 2 or self._ref_n < 2 or m < 1:
            return None
        ref = self._ref_mean
        change = self._after_sum / m  # the mean since the change point, less the reference mean
        std = math.sqrt(self._ref_m2 / (self._ref_n - 1))
        if std > 1e-9 * max(1.0, abs(ref)):
            scale = std
            gauge, gauge_std = self._recent_mean - self._gate_mean, math.sqrt(self._gate_m2 / (self._gate_n - 1))
            if (gauge > 0) != (change > 0) or abs(gauge) < max(self.min_effect * gauge_std, self.min_change):
                return None
        else:  # a constant reference: any move is measured exactly by the mean since the change point
            scale = max(abs(ref), 1e-9)
            if abs(change) < max(self.min_relative * scale, self.min_change):
                return None
        if (self.direction == UP and change <= 0) or (self.direction == DOWN and change >= 0):
            return None
        shift = Shift(
            before_mean=ref,
            after_mean=ref + change,
            before_count=self._ref_n,
            reference_std=std,
            effect_size=abs(change) / scale,
            samples=n,
        )
        self._quiet_until = n + self.cooldown
        self._pending_until = self._quiet_until
        self._ref_n, self._ref_mean, self._ref_m2 = 0, 0.0, 0.0
        self._after_n, self._after_sum, self._gate_n = 0, 0.0, 0
        return shift

    def _follow(self, x: float) -> None:
        """One more value of the pending new regime."""
        self._after_n += 1
        self._after_sum += x - self._ref_mean


class MeanShiftBank:
    """:class:`MeanShift` signals of one setting that are fed together, at most one value each per call.

    A prediction brings a value for each of a model's numeric features and for the step since its last
    value: some 60 signals, where one Python call per value cost more than the arithmetic. While a signal is
    settled (no change pending, nothing to judge), its update only learns: the recent mean, the held values,
    the reference (Welford's update) and ADWIN's window. The bank learns for all its settled signals at once,
    with the very operations of :meth:`MeanShift.update` in the same order on float64, so every state comes
    out bit for bit as the signal's own ``update`` would leave it: in one compiled loop, windows included,
    where ``models/_numeric.c`` was built and every signal gets a value; otherwise with numpy, the windows
    called one by one (through ``map``, without a Python frame). A signal that ADWIN fires on leaves the
    bank and runs its own ``update`` until it is settled again.

    The signals are the state: a snapshot pickles them (with what they learnt in the bank), not the bank's
    arrays.
    """

    def __init__(self) -> None:
        self.signals: list[MeanShift] = []
        self._arrays()

    def __getstate__(self) -> dict:
        # Copies of the signals in the bank, with their state: the signals themselves keep no held values
        # while in it (that would be a second copy of the largest part of their state).
        signals = list(self.signals)
        for j in self._inside():
            signal = signals[j] = object.__new__(MeanShift)
            signal.__dict__ = {**self.signals[j].__dict__, **self._state(j)}
        return {"signals": signals}

    def __setstate__(self, state: dict) -> None:
        self.signals = state["signals"]
        self._arrays()  # every signal out of the bank: it comes back after its next update

    def _arrays(self) -> None:
        k = len(self.signals)
        lag = self.signals[0].lag if k else 1
        self._outside = set(range(k))  # the signals whose state is their own, not the arrays'
        self._n = np.zeros(k, np.int64)
        self._pending = np.zeros(k, np.int64)
        self._recent = np.zeros(k)
        self._ref_n = np.zeros(k, np.int64)
        self._ref_mean = np.zeros(k)
        self._ref_m2 = np.zeros(k)
        self._held = np.zeros((k, lag))
        self._base = np.arange(k) * lag  # where each signal's held values start in ``_held`` flattened
        self._joining = False  # every signal in the bank learns its oldest held value at each update
        self._windows = [signal._window for signal in self.signals]

    def __len__(self) -> int:
        return len(self.signals)

    def add(self, signal: MeanShift) -> int:
        """A new signal (out of the bank until its first update); returns its column."""
        if self.signals and (signal.lag, signal._alpha) != (self.signals[0].lag, self.signals[0]._alpha):
            raise ValueError("a bank's signals share lag and recent span")
        self._write_back(self._inside())
        self.signals.append(signal)
        self._arrays()
        return len(self.signals) - 1

    def samples(self, column: int) -> int:
        return self.signals[column].samples if column in self._outside else int(self._n[column])

    def mean(self, column: int) -> float:
        return self.signals[column].mean if column in self._outside else float(self._recent[column])

    def _inside(self) -> list[int]:
        return [j for j in range(len(self.signals)) if j not in self._outside]

    def update_one(self, j: int, x: float) -> Shift | None:
        """Learn ``x`` in signal ``j`` alone, as its own ``update`` does (it leaves the bank if it was in)."""
        if j not in self._outside:
            self._write_back([j])
            self._outside.add(j)
        return self.signals[j].update(x)

    def _enter(self, j: int) -> None:
        signal = self.signals[j]
        self._n[j], self._pending[j] = signal._samples, signal._pending_until
        self._recent[j], self._ref_n[j] = signal._recent_mean, signal._ref_n
        self._ref_mean[j], self._ref_m2[j] = signal._ref_mean, signal._ref_m2
        self._held[j] = np.frombuffer(signal._held)
        signal._held = None  # the bank's row is the only copy until the signal leaves
        self._windows[j] = signal._window
        self._outside.discard(j)
        self._joining = False

    def _write_back(self, columns: list[int]) -> None:
        for j in columns:
            self.signals[j].__dict__.update(self._state(j))

    def _state(self, j: int) -> dict:
        """What signal ``j`` learnt in the bank, as the fields of its own state."""
        return {"_samples": int(self._n[j]), "_recent_mean": float(self._recent[j]), "_ref_n": int(self._ref_n[j]),
                "_ref_mean": float(self._ref_mean[j]), "_ref_m2": float(self._ref_m2[j]),
                "_held": array("d", self._held[j].tobytes())}

    def update(self, x: np.ndarray, columns: np.ndarray | None = None) -> list[tuple[int, Shift]]:
        """Learn ``x[i]`` in signal ``columns[i]`` (every signal, in order, when ``columns`` is None);
        return the shifts found, as ``(column, shift)`` in the order of ``columns``."""
        outside = self._outside
        if columns is None and _numeric is not None:
            first = self.signals[0]
            skip = None
            if outside:
                flags = bytearray(len(self.signals))
                for j in outside:
                    flags[j] = 1
                skip = bytes(flags)
            fired = _numeric.learn(x, self._n, self._pending, self._recent, self._ref_n, self._ref_mean, self._ref_m2,
                                  self._held, self._windows, skip, first._alpha, first.lag)
            if not fired and not outside:
                return []
            return self._visit(sorted(fired + list(outside)), range(len(x)), x.tolist())
        self._learn(x, columns)
        values = x.tolist()
        order = range(len(values)) if columns is None else columns.tolist()
        if not outside or outside.isdisjoint(order):
            windows = self._windows if columns is None else [self._windows[j] for j in order]
            fired = list(map(_WINDOW_UPDATE, windows, values))
            if True not in fired:
                return []
            return self._visit([i for i, hit in enumerate(fired) if hit], order, values)
        # A few signals are out of the bank: the others' windows are still called through ``map``.
        inside = [i for i, j in enumerate(order) if j not in outside]
        fired = map(_WINDOW_UPDATE, [self._windows[order[i]] for i in inside], [values[i] for i in inside])
        away = [i for i, j in enumerate(order) if j in outside]
        return self._visit(sorted([i for i, hit in zip(inside, fired) if hit] + away), order, values)

    def _visit(self, positions: list[int], order: range | list[int], values: list[float]
               ) -> list[tuple[int, Shift]]:
        """The Python step, for the signals at ``positions`` (in order): those in the bank whose window
        fired (already learnt) leave it; those out of it run their own update, and come back once settled."""
        found = []
        outside = self._outside
        for i in positions:
            j = order[i]
            signal = self.signals[j]
            if j not in outside:
                self._write_back([j])
                outside.add(j)
                shift = signal._fired(signal._samples, values[i])
            else:
                shift = signal.update(values[i])
                if signal._gate_n == 0 and signal._samples >= max(signal._pending_until, 1):
                    self._enter(j)  # settled: its next update only learns
            if shift is not None:
                found.append((j, shift))
        return found

    def _learn(self, x: np.ndarray, columns: np.ndarray | None) -> None:
        """What ``MeanShift.update`` does before asking ADWIN, for a settled signal (``n > pending_until``,
        no gate open); the signals out of the bank get it too, and are loaded afresh when they come back."""
        first = self.signals[0]
        alpha, lag = first._alpha, first.lag
        if columns is None:
            base, n, recent = self._base, self._n, self._recent
            ref_n, ref_mean, ref_m2 = self._ref_n, self._ref_mean, self._ref_m2
        else:
            base, n, recent = self._base[columns], self._n[columns], self._recent[columns]
            ref_n, ref_mean, ref_m2 = self._ref_n[columns], self._ref_mean[columns], self._ref_m2[columns]
        n += 1
        step = x - recent
        step *= alpha
        recent += step
        slot = n & (lag - 1) if lag & (lag - 1) == 0 else n % lag  # value number n is held at n % lag
        slot += base  # ... of its row of the held values, flattened
        held = self._held.reshape(-1)
        # Once each settled signal is ``lag`` values past its last change, the oldest held value joins the
        # reference at every update (and keeps doing so until a signal leaves the bank).
        if not self._joining:
            joins = n - lag > (self._pending if columns is None else self._pending[columns])
            if columns is None:  # do all signals in the bank join now? (those outside do not count)
                joining = joins.copy()
                joining[list(self._outside)] = True
                self._joining = bool(joining.all())
        else:
            joins = None
        if joins is None or joins.all():
            oldest = held.take(slot)
            ref_n += 1
            delta = oldest - ref_mean
            ref_mean += delta / ref_n
            oldest -= ref_mean
            oldest *= delta
            ref_m2 += oldest
        elif joins.any():
            some = np.flatnonzero(joins)
            oldest = held.take(slot[some])
            count = ref_n[some] + 1
            ref_n[some] = count
            mean = ref_mean[some]
            delta = oldest - mean
            mean = mean + delta / count
            ref_mean[some] = mean
            ref_m2[some] += delta * (oldest - mean)
        held.put(slot, x)
        if columns is not None:
            self._n[columns], self._recent[columns] = n, recent
            self._ref_n[columns], self._ref_mean[columns], self._ref_m2[columns] = ref_n, ref_mean, ref_m2


# ``window.update(x)`` without a Python frame, for ``map``: compiled, for windows of either kind (a snapshot
# taken where the step was not compiled holds River's).
_WINDOW_UPDATE = drift.ADWIN()._helper.__class__.update if _numeric is None else _numeric.update
