"""Everything watched for one model version: its inputs, outputs, latency and, once labels land, its errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from math import isfinite
from operator import itemgetter
from typing import Any, Callable

import numpy as np

from models import signals
from models.categorical import CategoryChange, CategoryShift, ClassMix, ClassShift
from models.config import MonitorConfig
from models.performance import ConfidenceEstimate, ErrorRate, RateChange
from models.quality import OutOfRange, RangeWatch, SchemaChange, SchemaWatch
from models.schema import Detection, DetectionKind, LabelEvent, PredictionEvent, Scalar, Severity
from models.signals import BOTH, DOWN, UP, MeanShift, MeanShiftBank, Shift
from models.snapshot import Snapshottable


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


# Numeric features from which a model's values are learnt together rather than one by one (measured): with
# numpy, from 16, below which its cost per call outweighs the calls it saves; compiled, always.
_TOGETHER_FROM = 16 if signals._numeric is None else 1
_MAX_LAYOUTS = 64  # key sets remembered per model version; more (a feature set that keeps changing) start over
_NUMBER_TYPES = frozenset((float, int, bool, type(None)))


@dataclass
class _Layout:
    """Where a model's monitors find their values in an event with a given key set (``ModelMonitor._layout``):
    ``positions`` of the numeric features and their ``features`` numbers, ``categories`` (position, name),
    keys ``absent`` (no monitor yet: their values were missing) and keys ``unwatched`` (no monitor for a
    value of their kind, and the cap reached)."""

    positions: list[int]
    features: np.ndarray
    categories: list[tuple[int, str]]
    absent: list[int]
    unwatched: list[tuple[int, bool]]  # with whether the value was a string
    ordered: bool = field(init=False)  # the features are 0, 1, 2...: all a model had when it was made, in order
    where: dict[int, int] = field(init=False)  # feature number -> position
    _pick: Callable[[list[Scalar]], Any] = field(init=False)

    def __post_init__(self) -> None:
        self.ordered = bool(np.array_equal(self.features, np.arange(len(self.features))))
        self.where = dict(zip(self.features.tolist(), self.positions))
        positions = self.positions
        self._pick = itemgetter(*positions) if len(positions) > 1 else lambda values: [values[p] for p in positions]

    def numbers(self, values: list[Scalar]) -> np.ndarray | None:
        """The numeric values as floats, NaN where missing; None if a value is not of the kind placed here."""
        for p, _ in self.categories:
            if not isinstance(values[p], str):
                return None
        for p in self.absent:
            if not _missing(values[p]):
                return None
        for p, is_str in self.unwatched:  # a value of the other kind may have a monitor
            raw = values[p]
            if isinstance(raw, str) != is_str and not _missing(raw):
                return None
        picked = self._pick(values) if self.positions else ()
        if not _NUMBER_TYPES.issuperset(map(type, picked)):
            if any(isinstance(raw, str) for raw in picked):
                return None
            picked = [_numeric(raw) for raw in picked]  # subclasses of the number types
        return np.array(picked, dtype=float)


class ModelMonitor(Snapshottable):
    """Per model + version (+ segment) monitors, created lazily as features appear.

    - numeric features (and booleans): mean shift and spread shift (:class:`MeanShift` on the values and on
      the steps between consecutive values) and learnt range (:class:`RangeWatch`);
    - string features and string predictions (class mix): :class:`CategoryShift`, also for unseen values;
    - numeric predictions, confidence, latency, share of missing values: :class:`MeanShift`;
    - the schema (new or vanished features): :class:`SchemaWatch`;
    - once labels land: the error rate of classifiers (:class:`ErrorRate`, running accuracy), the mean
      absolute error of regressors, and user feedback; the labels also calibrate a label-free accuracy
      estimate from confidence (:class:`ConfidenceEstimate`), reported once at least one label calibrated it.

    Feature drift and data quality are Data Operations' concern, confidence and feedback the users',
    latency Technical Operations', and error-rate changes everyone's: the kinds say which, routing decides.
    The number of features watched is capped by ``config.max_features``; the rest are counted.
    """

    def __init__(self, model: str, version: str, segment: str | None = None, config: MonitorConfig | None = None):
        self.model = model
        self.version = version
        self.segment = segment
        self.config = config or MonitorConfig()
        c = self.config
        # Numeric feature number k: its mean and its spread are the bank's signals 2k and 2k + 1, its range
        # ranges[k], its latest value last[k] (NaN before the first).
        self._feature_index: dict[str, int] = {}
        self._bank = MeanShiftBank()
        self._ranges: list[RangeWatch] = []
        self._range_passed = np.zeros(0, np.int64)
        # Each range watch's quiet_range (low and high), while values are learnt together; None one by one.
        self._range_quiet: tuple[np.ndarray, np.ndarray] | None = None
        self._last = np.zeros(0)
        self._layouts: dict[tuple[str, ...], _Layout] = {}
        self._mean_alarm: dict[str, int] = {}
        self._categories: dict[str, CategoryShift] = {}
        self._schema = SchemaWatch(c.schema_warmup, c.vanish_after, max(c.max_features, 1))
        self._missing = self._signal(UP)
        self._confidence = self._signal(DOWN)
        self._prediction = self._signal(BOTH)
        self._classes = self._categorical()
        self._class_mix = ClassMix(delta=c.drift_delta, min_samples=c.drift_min_samples, min_change=c.label_min_change,
                                   cooldown=c.drift_cooldown, max_classes=min(c.max_categories, 64))
        self._latency = self._signal(UP, min_effect=c.latency_min_effect)
        self._errors = self._signal(UP, min_samples=c.performance_min_samples)
        self._error_rate = ErrorRate(method=c.error_method, confidence=c.error_confidence, direction=c.error_direction,
                                     min_samples=c.performance_min_samples, min_change=c.error_min_change,
                                     window=c.error_window, cooldown=c.drift_cooldown)
        self._estimate = ConfidenceEstimate(delta=c.drift_delta, min_samples=c.drift_min_samples,
                                            min_drop=c.estimate_min_drop, cooldown=c.drift_cooldown)
        self._feedback = self._signal(DOWN, min_samples=c.performance_min_samples)
        self._label_mix = ClassMix(delta=c.drift_delta, min_samples=c.performance_min_samples,
                                   min_change=c.label_min_change, cooldown=c.drift_cooldown,
                                   max_classes=min(c.max_categories, 64))
        self._label_level = MeanShift(delta=c.drift_delta, min_samples=c.performance_min_samples,
                                      min_effect=c.drift_min_effect, cooldown=c.drift_cooldown)
        self.predictions = 0
        self.labelled = 0
        self.correct = 0
        self.unwatched_features = 0

    def __getstate__(self) -> dict:
        if self._ranges:
            self._ranges_caught_up()
        # Caches: the layouts are rebuilt from the events, the quiet ranges from the watches.
        return {k: v for k, v in self.__dict__.items() if k not in ("_layouts", "_range_passed", "_range_quiet")}

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        if "_features" in state:
            # A snapshot from when a numeric feature's mean, spread and range monitors were in three dicts.
            spreads, ranges = state.pop("_spreads"), state.pop("_ranges")
            state["_numeric"] = {name: (signal, spreads[name], ranges[name])
                                 for name, signal in state.pop("_features").items()}
        if "_numeric" in state:
            # ... and from when they were a (mean, spread, range) tuple per name, the latest values a dict.
            numeric, last = state.pop("_numeric"), state.pop("_last")
            bank = state["_bank"] = MeanShiftBank()
            for signal, spread, _ in numeric.values():
                bank.add(signal)
                bank.add(spread)
            state["_feature_index"] = {name: k for k, name in enumerate(numeric)}
            state["_ranges"] = [watch for _, _, watch in numeric.values()]
            state["_last"] = np.array([last.get(name, math.nan) for name in numeric])
        self.__dict__.update(state)
        self._layouts = {}
        self._range_passed = np.zeros(len(self._ranges), np.int64)
        self._range_quiet = None

    def _categorical(self) -> CategoryShift:
        c = self.config
        return CategoryShift(reference=c.categorical_reference, window=c.categorical_window,
                             alpha=c.categorical_alpha, min_distance=c.categorical_min_distance,
                             min_share=c.categorical_min_share, max_categories=c.max_categories)

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
        t = event.timestamp
        found, missing = self._observe_features(event.features, t)
        if event.features:
            shift = self._missing.update(missing / len(event.features))
            if shift is not None:
                found.append(self._detection(
                    DetectionKind.DATA_QUALITY, shift, t,
                    f"missing feature values on {self.model} v{self.version} rose to {shift.after_mean:.1%}",
                ))
        for change in self._schema.update(event.features):
            found.append(self._schema_change(change, t))
        self._observe(self._confidence, event.confidence, DetectionKind.CONFIDENCE_DROP, t, found,
                      "confidence of {m} fell ({b:.3f} -> {a:.3f})")
        self._observe(self._latency, event.latency_ms, DetectionKind.LATENCY_SPIKE, t, found,
                      "latency of {m} rose ({b:.1f} ms -> {a:.1f} ms)", critical_effect=5.0)
        if isinstance(event.prediction, str):
            change = self._classes.update(event.prediction)
            if change is not None:
                found.append(self._category_detection(DetectionKind.PREDICTION_DRIFT, change, t,
                                                      f"class mix of {self.model} v{self.version} predictions"))
        else:
            self._observe(self._prediction, _numeric(event.prediction), DetectionKind.PREDICTION_DRIFT, t, found,
                          "predictions of {m} drifted ({b:.4g} -> {a:.4g})")
            if _is_class(event.prediction):
                # Whole-number outputs are classes too: their mix moves by a few points long before the mean
                # moves by a standard deviation. One prediction-drift detection per event at most.
                change = self._class_mix.update(_class_name(event.prediction))
                if change is not None and not (found and found[-1].kind == DetectionKind.PREDICTION_DRIFT):
                    found.append(self._class_detection(DetectionKind.PREDICTION_DRIFT, change, t, "predictions"))
        if event.confidence is not None:
            shift = self._estimate.update(event.confidence)
            if shift is not None and self._estimate.labelled:
                found.append(self._estimate_detection(shift, t))
        return found

    def _observe_features(self, features: dict[str, Scalar], t: float) -> tuple[list[Detection], int]:
        """Every feature value of one prediction; returns the detections and how many values were missing.

        The values are placed by the event's layout: which feature each key is, kept per key set, since a
        model's events mostly carry the same features in the same order.
        """
        values = list(features.values())
        keys = tuple(features)
        layout = self._layouts.get(keys)
        numbers = None if layout is None else layout.numbers(values)
        if numbers is None:  # new keys, or a value of another type than the layout's
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.clear()
            layout = self._layouts[keys] = self._layout(features)
            numbers = layout.numbers(values)
            assert numbers is not None, "an event fits the layout made from it"
        missing = len(layout.absent)
        for p, _ in layout.unwatched:
            if _missing(values[p]):
                missing += 1
            else:
                self.unwatched_features += 1
        placed: list[tuple[int, int, Detection]] = []  # (position in the event, order there, detection)
        if len(numbers):
            missing += self._observe_numbers(layout, numbers, t, placed)
        for p, name in layout.categories:
            change = self._categories[name].update(values[p])  # type: ignore[arg-type]
            if change is not None:
                placed.append((p, 0, self._category_detection(
                    DetectionKind.FEATURE_DRIFT, change, t, f"feature '{name}' of {self.model} v{self.version}",
                    feature=name)))
        if len(placed) > 1:
            placed.sort(key=lambda item: item[:2])
        return [detection for _, _, detection in placed], missing

    def _observe_numbers(self, layout: _Layout, numbers: np.ndarray, t: float,
                         placed: list[tuple[int, int, Detection]]) -> int:
        """The numeric values (NaN where missing): mean, spread and range; returns how many were missing.

        Together (:class:`MeanShiftBank`, compiled or numpy) from ``_TOGETHER_FROM`` features; one by one,
        as plain floats, below it, where numpy's cost per call outweighs the calls it saves.
        Either way the monitors end in the same state (``test_monitors`` runs both on the same events).
        """
        if len(self._ranges) >= _TOGETHER_FROM:
            missing, shifts, outs = self._numbers_together(layout, numbers)
        else:
            missing, shifts, outs = self._numbers_one_by_one(layout.features.tolist(), numbers.tolist())
        for column, shift in shifts:
            k, is_spread = divmod(column, 2)
            name = self._feature_names[k]
            if not is_spread:
                self._mean_alarm[name] = self._bank.samples(column)
                placed.append((layout.where[k], 0, self._detection(
                    DetectionKind.FEATURE_DRIFT, shift, t,
                    f"feature '{name}' of {self.model} v{self.version} drifted {shift.direction} "
                    f"({shift.before_mean:.4g} -> {shift.after_mean:.4g})",
                    feature=name,
                )))
            # Spread: the size of the step between consecutive values, which a change of level moves only
            # once (one big step) but a change of variance moves for good. A move of the mean that is also a
            # move of the spread is one change: reported once.
            elif self._bank.samples(column - 1) - self._mean_alarm.get(name, -10**9) > self.config.drift_cooldown:
                detection = self._detection(
                    DetectionKind.FEATURE_DRIFT, shift, t,
                    f"spread of feature '{name}' of {self.model} v{self.version} {'rose' if shift.direction == UP else 'fell'}"
                    f" (typical step {shift.before_mean:.4g} -> {shift.after_mean:.4g})",
                    feature=name,
                )
                detection.evidence["statistic"] = "adwin_spread_shift"
                placed.append((layout.where[k], 1, detection))
        for k, out in outs:
            placed.append((layout.where[k], 2, self._out_of_range(self._feature_names[k], out, t)))
        return missing

    def _numbers_one_by_one(self, features: list[int], values: list[float]
                            ) -> tuple[int, list[tuple[int, Shift]], list[tuple[int, OutOfRange]]]:
        if self._range_quiet is not None:  # until now learnt together: the counts go to their watches
            self._ranges_caught_up()
            self._range_quiet = None
        missing, shifts, outs = 0, [], []
        bank, last, ranges = self._bank, self._last, self._ranges
        for k, value in zip(features, values):
            if not isfinite(value):
                missing += 1
                continue
            before = float(last[k])
            last[k] = value
            if (shift := bank.update_one(2 * k, value)) is not None:
                shifts.append((2 * k, shift))
            if before == before and (shift := bank.update_one(2 * k + 1, abs(value - before))) is not None:
                shifts.append((2 * k + 1, shift))
            if (out := ranges[k].update(value)) is not None:
                outs.append((k, out))
        return missing, shifts, outs

    def _numbers_together(self, layout: _Layout, numbers: np.ndarray
                          ) -> tuple[int, list[tuple[int, Shift]], list[tuple[int, OutOfRange]]]:
        features, full = layout.features, layout.ordered and len(layout.features) == len(self._ranges)
        if full and signals._numeric is not None:
            done = self._numbers_compiled(numbers)
            if done is not None:
                return done
        missing = 0
        if not isfinite(np.add.reduce(numbers)):  # a NaN or an infinity somewhere (or a sum too large: no harm)
            finite = np.isfinite(numbers)
            missing = len(numbers) - int(finite.sum())
            features, numbers, full = features[finite], numbers[finite], False
        if full:  # every feature, in order: whole arrays rather than gathers and scatters
            last, self._last = self._last, numbers
        else:
            last = self._last[features]
            self._last[features] = numbers
        steps = np.abs(numbers - last)
        if full and isfinite(np.add.reduce(steps)):  # (no step before a feature's first value: NaN)
            both = np.empty(2 * len(numbers))
            both[0::2], both[1::2] = numbers, steps
            shifts = self._bank.update(both)
        else:
            has_step = last == last
            columns = np.concatenate((2 * features, 2 * features[has_step] + 1))
            shifts = self._bank.update(np.concatenate((numbers, steps[has_step])), columns)
        # Ranges: a value within its watch's quiet range is only counted (in ``_range_passed`` until the
        # watch is next called); the others go to their watch.
        low, high = self._quiet_ranges()
        if full:
            inside = (low <= numbers) & (numbers <= high)
            if np.logical_and.reduce(inside):
                self._range_passed += 1
                return missing, shifts, []
        else:
            inside = (low[features] <= numbers) & (numbers <= high[features])
        self._range_passed[features[inside]] += 1
        outside = ~inside
        return missing, shifts, self._out_of_quiet(features[outside].tolist(), numbers[outside].tolist())

    def _numbers_compiled(self, numbers: np.ndarray
                          ) -> tuple[int, list[tuple[int, Shift]], list[tuple[int, OutOfRange]]] | None:
        """Every feature, in order, by the compiled step (``models/_numeric.c``): what the numpy path does in
        that case, as loops. None, with nothing learnt, if a value or a step is not finite (a feature's
        first value): the numpy path takes those."""
        kernel = signals._numeric
        both = np.empty(2 * len(numbers))
        if not kernel.pair(numbers, self._last, both):
            return None
        shifts = self._bank.update(both)
        low, high = self._quiet_ranges()
        away = kernel.ranges(numbers, low, high, self._range_passed)
        return 0, shifts, self._out_of_quiet(away, numbers[away].tolist()) if away else []

    def _quiet_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each range watch's quiet range (low and high), kept while values are learnt together."""
        if self._range_quiet is None:
            quiet = [watch.quiet_range for watch in self._ranges]
            self._range_quiet = (np.array([q[0] for q in quiet]), np.array([q[1] for q in quiet]))
        return self._range_quiet

    def _out_of_quiet(self, features: list[int], values: list[float]) -> list[tuple[int, OutOfRange]]:
        """Values outside their watch's quiet range: the watch learns them, and its quiet range is kept."""
        low, high = self._quiet_ranges()
        outs = []
        for k, value in zip(features, values):
            watch = self._ranges_caught_up(k)
            if (out := watch.update(value)) is not None:
                outs.append((k, out))
            low[k], high[k] = watch.quiet_range
        return outs

    def _ranges_caught_up(self, k: int | None = None) -> RangeWatch:
        """Range watch ``k`` (every one if None) with the values it passed counted."""
        for j in range(len(self._ranges)) if k is None else (k,):
            self._ranges[j].passed(int(self._range_passed[j]))
            self._range_passed[j] = 0
        return self._ranges[-1 if k is None else k]

    @property
    def _feature_names(self) -> list[str]:
        return list(self._feature_index)

    def _room(self) -> bool:
        return len(self._feature_index) + len(self._categories) < self.config.max_features

    def _layout(self, features: dict[str, Scalar]) -> _Layout:
        """Place each key of an event, creating monitors for the features seen first (up to the cap)."""
        positions, numbered, categories, absent, unwatched = [], [], [], [], []
        for p, (name, raw) in enumerate(features.items()):
            if isinstance(raw, str):
                if name not in self._categories and self._room():
                    self._categories[name] = self._categorical()
                if name in self._categories:
                    categories.append((p, name))
                else:
                    unwatched.append((p, True))
                continue
            k = self._feature_index.get(name)
            if k is None and _numeric(raw) is not None:
                if not self._room():
                    unwatched.append((p, False))
                    continue
                k = self._add_feature(name)
            if k is None:
                absent.append(p)  # no value yet (missing)
            else:
                positions.append(p)
                numbered.append(k)
        return _Layout(positions, np.array(numbered, np.int64), categories, absent, unwatched)

    def _add_feature(self, name: str) -> int:
        k = self._feature_index[name] = len(self._feature_index)
        self._bank.add(self._signal(BOTH))
        self._bank.add(self._signal(BOTH))
        self._ranges.append(RangeWatch(self.config.range_warmup, self.config.range_margin,
                                       min_share=self.config.range_min_share))
        self._range_passed = np.append(self._range_passed, 0)
        if self._range_quiet is not None:
            low, high = self._ranges[-1].quiet_range
            self._range_quiet = (np.append(self._range_quiet[0], low), np.append(self._range_quiet[1], high))
        self._last = np.append(self._last, math.nan)
        return k

    def _category_detection(self, kind: DetectionKind, change: CategoryChange, t: float, what: str,
                            **extra: str) -> Detection:
        if change.statistic == "unseen_category":
            names = ", ".join(repr(c) for c in change.new_categories[:3])
            summary = f"{what} has unseen values {names} ({sum(change.after.get(c, 0.0) for c in change.new_categories):.1%})"
        else:
            moves = ", ".join(f"{c} {change.before[c]:.0%} -> {change.after[c]:.0%}" for c in list(change.before)[:3])
            summary = f"{what} changed mix: {moves}"
        return Detection(
            kind=kind,
            entity={**self.labels, **extra},
            score=round(min(1.0, change.distance / 0.5), 4),
            severity=Severity.CRITICAL if change.distance >= 0.3 else Severity.WARNING,
            event_time=t,
            detector="category_shift",
            evidence=change.as_evidence(),
            summary=summary,
        )

    def _out_of_range(self, name: str, out: OutOfRange, t: float) -> Detection:
        return Detection(
            kind=DetectionKind.DATA_QUALITY,
            entity={**self.labels, "feature": name},
            score=round(min(1.0, out.share / 0.5), 4),
            severity=Severity.CRITICAL if out.share >= 0.25 else Severity.WARNING,
            event_time=t,
            detector="out_of_range",
            evidence=out.as_evidence(),
            summary=f"feature '{name}' of {self.model} v{self.version}: {out.share:.0%} of recent values outside "
                    f"its usual range [{out.low:.4g}, {out.high:.4g}]",
        )

    def _schema_change(self, change: SchemaChange, t: float) -> Detection:
        what = "appeared" if change.change == "new_feature" else "stopped arriving"
        return Detection(
            kind=DetectionKind.DATA_QUALITY,
            entity={**self.labels, "feature": change.feature},
            score=0.5 if change.change == "new_feature" else 0.8,
            severity=Severity.WARNING,
            event_time=t,
            detector="schema_watch",
            evidence=change.as_evidence(),
            summary=f"feature '{change.feature}' of {self.model} v{self.version} {what} (schema change)",
        )

    def _estimate_detection(self, shift: Shift, t: float) -> Detection:
        drop = shift.before_mean - shift.after_mean
        evidence = {**shift.as_evidence(), "statistic": "confidence_based_accuracy_estimate", "estimated": True,
                    "calibration_labels": self._estimate.labelled}
        if self._error_rate.accuracy is not None:
            evidence["running_accuracy"] = round(self._error_rate.accuracy, 4)
        return Detection(
            kind=DetectionKind.PERFORMANCE_DRIFT,
            entity=dict(self.labels),
            score=round(min(1.0, drop / 0.2), 4),
            severity=Severity.CRITICAL if drop >= 0.1 else Severity.WARNING,
            event_time=t,
            detector="confidence_based_estimate",
            evidence=evidence,
            summary=f"estimated accuracy of {self.model} v{self.version} fell ({shift.before_mean:.3f} -> "
                    f"{shift.after_mean:.3f}) before labels confirm it",
        )

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

    def observe_outcome(self, prediction: Any, label: LabelEvent, confidence: float | None = None) -> list[Detection]:
        """Learn from ground truth or feedback joined to an earlier prediction of this model version."""
        found: list[Detection] = []
        t = label.timestamp
        if label.label is not None:
            self.labelled += 1
            error = _error(prediction, label.label)
            self.correct += error == 0.0
            self._observe_label(label.label, t, found)
            if _is_regression(prediction, label.label):
                self._observe(self._errors, error, DetectionKind.PERFORMANCE_DRIFT, t, found,
                              "error of {m} rose ({b:.3f} -> {a:.3f})", critical_effect=1.0)
                if found:
                    found[-1].evidence["running_accuracy"] = round(self.correct / self.labelled, 4)
                    found[-1].evidence["labelled"] = self.labelled
            else:
                change = self._error_rate.update(error)
                if confidence is not None:
                    self._estimate.learn(confidence, error == 0.0)
                if change is not None:
                    self._estimate.freeze()  # the confidence no longer means what the labels taught it
                    found.append(self._rate_detection(change, t))
        self._observe(self._feedback, label.feedback, DetectionKind.NEGATIVE_FEEDBACK, t, found,
                      "user feedback on {m} worsened ({b:.2f} -> {a:.2f})")
        return found

    def _observe_label(self, label: Scalar, t: float, found: list[Detection]) -> None:
        value = _numeric(label)
        if value is not None and not isinstance(label, bool) and not value.is_integer():
            self._observe(self._label_level, value, DetectionKind.LABEL_DRIFT, t, found,
                          "ground truth of {m} moved ({b:.4g} -> {a:.4g})")
            return
        change = self._label_mix.update(_class_name(label))
        if change is not None:
            found.append(self._class_detection(DetectionKind.LABEL_DRIFT, change, t, "ground truth"))

    def _class_detection(self, kind: DetectionKind, change: ClassShift, t: float, what: str) -> Detection:
        shift = change.shift
        score, severity = shift_severity(abs(shift.after_mean - shift.before_mean) / 0.05, critical_effect=3.0)
        return Detection(
            kind=kind,
            entity=dict(self.labels),
            score=score,
            severity=severity,
            event_time=t,
            detector="class_mix",
            evidence=change.as_evidence(),
            summary=f"share of class {change.label!r} in the {what} of {self.model} v{self.version} moved "
                    f"{shift.before_mean:.1%} -> {shift.after_mean:.1%}",
        )

    def _rate_detection(self, change: RateChange, t: float) -> Detection:
        score, severity = shift_severity(change.effect_size, critical_effect=1.0)
        moved = "rose"
        if change.direction == DOWN:  # better than before: worth knowing (a fix landed, the concept came back)
            severity, moved = Severity.INFO, "fell"
        return Detection(
            kind=DetectionKind.PERFORMANCE_DRIFT,
            entity=dict(self.labels),
            score=score,
            severity=severity,
            event_time=t,
            detector=f"error_rate_{change.method}",
            evidence={**change.as_evidence(), "labelled": self.labelled},
            summary=f"error of {self.model} v{self.version} {moved} ({change.before_rate:.3f} -> {change.after_rate:.3f}); "
                    f"running accuracy {change.accuracy:.1%}",
        )

    def state(self) -> dict[str, Any]:
        """What the ops views show for this model: current levels and sample counts."""
        return {
            **self.labels,
            "predictions": self.predictions,
            "labelled": self.labelled,
            "accuracy": round(self.correct / self.labelled, 4) if self.labelled else None,
            "confidence": round(self._confidence.mean, 4) if self._confidence.samples else None,
            "latency_ms": round(self._latency.mean, 3) if self._latency.samples else None,
            "features": {name: round(self._bank.mean(2 * k), 6) for name, k in self._feature_index.items()},
            "categories": {name: {k: round(v, 4) for k, v in s.shares().items()} for name, s in self._categories.items()},
            "recent_accuracy": _round(self._error_rate.recent_accuracy),
            "estimated_accuracy": _round(self._estimate.estimate),
            "unwatched_features": self.unwatched_features,
        }


def _missing(value: Scalar) -> bool:
    return value is None or (isinstance(value, float) and not isfinite(value))


def _is_class(prediction: Scalar) -> bool:
    """Booleans and whole numbers: the outputs of a classifier (a regressor's outputs are rarely all whole)."""
    return isinstance(prediction, bool) or (isinstance(prediction, (int, float)) and float(prediction).is_integer())


def _class_name(label: Scalar) -> str:
    """1, 1.0 and "1" are one class; True is "true"."""
    if isinstance(label, bool):
        return "true" if label else "false"
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _is_regression(prediction: Any, label: Scalar) -> bool:
    """Both sides real-valued and not both whole numbers: a regression model, judged by absolute error."""
    p, y = _numeric(prediction), _numeric(label)
    return (
        p is not None and y is not None and not isinstance(prediction, bool)
        and not (float(p).is_integer() and float(y).is_integer())
    )


def _error(prediction: Any, label: Scalar) -> float:
    """0/1 for classes; absolute error when both sides are real-valued (a regression model)."""
    if _is_regression(prediction, label):
        return abs(_numeric(prediction) - _numeric(label))  # type: ignore[operator]
    return 0.0 if prediction == label else 1.0
