"""ModelMonitor and ModelFleet beyond numeric means: categorical features, class mix of predictions, value
ranges, schema changes, label drift, the error rate and the label-free accuracy estimate."""

from __future__ import annotations

import random
from typing import Iterator

import pytest

from models.config import MonitorConfig
from models.fleet import ModelFleet
from models.model_monitor import ModelMonitor
from models.schema import DetectionKind, LabelEvent, PredictionEvent

MODEL = {"model": "m", "version": "1"}
PLANS = {"free": 0.6, "pro": 0.3, "team": 0.1}


def events(seed: int = 1, n: int = 6000, at: int = 3000, plans_after: dict[str, float] = PLANS,
           classes_after: dict[str, float] | None = None, x_after: float | None = None,
           drop_feature_at: int | None = None, new_feature_at: int | None = None,
           confidence_after: float = 0.9) -> Iterator[PredictionEvent]:
    rng = random.Random(seed)
    classes = {"cat": 0.5, "dog": 0.4, "fish": 0.1}
    for i in range(n):
        after = i >= at
        plan = rng.choices(list(plans_after if after else PLANS), list((plans_after if after else PLANS).values()))[0]
        mix = classes_after if after and classes_after else classes
        x = rng.gauss(0, 1) if not (after and x_after is not None and rng.random() < 0.2) else x_after
        features: dict = {"x": x, "plan": plan}
        if drop_feature_at is None or i < drop_feature_at:
            features["y"] = rng.gauss(10, 2)
        if new_feature_at is not None and i >= new_feature_at:
            features["z"] = 1.0
        confidence = min(1.0, max(0.0, rng.gauss(confidence_after if after else 0.9, 0.03)))
        yield PredictionEvent(f"r{i}", "m", "1", float(i), features,
                              rng.choices(list(mix), list(mix.values()))[0], confidence)


def run(stream) -> list[tuple[int, str, str, dict[str, str]]]:
    monitor = ModelMonitor("m", "1")
    return [(i, d.kind.value, d.detector, d.entity) for i, e in enumerate(stream) for d in monitor.observe_prediction(e)]


def test_nothing_changes_nothing_is_reported():
    assert run(events(n=30_000, at=30_000)) == []


def test_categorical_feature_frequency_shift():
    found = run(events(plans_after={"free": 0.3, "pro": 0.3, "team": 0.4}))
    assert found == [(3151, "feature_drift", "category_shift", {**MODEL, "feature": "plan"})]


def test_unseen_category_of_a_feature():
    monitor = ModelMonitor("m", "1")
    stream = events(plans_after={"free": 0.55, "pro": 0.3, "team": 0.1, "enterprise": 0.05})
    (i, d), = [(i, d) for i, e in enumerate(stream) for d in monitor.observe_prediction(e)]
    assert (i, d.kind, d.entity["feature"]) == (3151, DetectionKind.FEATURE_DRIFT, "plan")
    assert d.evidence["statistic"] == "unseen_category" and d.evidence["new_categories"] == ["enterprise"]
    assert "unseen values 'enterprise'" in d.summary


def test_class_mix_of_string_predictions():
    found = run(events(classes_after={"cat": 0.3, "dog": 0.4, "fish": 0.3}))
    assert found == [(3215, "prediction_drift", "category_shift", MODEL)]


def test_values_out_of_their_learnt_range():
    found = run(events(x_after=40.0))
    # 20% of x at 40 also moves its mean: the mean shift and the range watch both see it.
    assert found == [(3007, "feature_drift", "adwin_mean_shift", {**MODEL, "feature": "x"}),
                     (3058, "data_quality", "out_of_range", {**MODEL, "feature": "x"})]


def test_vanished_and_new_features():
    found = run(events(n=5000, drop_feature_at=3000, new_feature_at=4000))
    assert found == [(3519, "data_quality", "schema_watch", {**MODEL, "feature": "y"}),
                     (4000, "data_quality", "schema_watch", {**MODEL, "feature": "z"})]


def test_features_beyond_max_features_are_counted_not_watched():
    monitor = ModelMonitor("m", "1", config=MonitorConfig(max_features=2))
    monitor.observe_prediction(PredictionEvent("r", "m", "1", 0.0, {"a": 1.0, "b": "x", "c": 2.0}, 1))
    assert monitor.state()["unwatched_features"] == 1 and set(monitor.state()["features"]) == {"a"}


def labelled_traffic(seed: int = 2, n: int = 8000, at: int = 4000, positive_after: float = 0.3,
                     error_after: float = 0.1, confidence_after: float = 0.9,
                     labels_until: int | None = None) -> Iterator[PredictionEvent | LabelEvent]:
    """A binary classifier whose label arrives with its prediction's successor."""
    rng = random.Random(seed)
    previous: LabelEvent | None = None
    for i in range(n):
        after = i >= at
        truth = int(rng.random() < (positive_after if after else 0.3))
        wrong = rng.random() < (error_after if after else 0.1)
        confidence = min(1.0, max(0.0, rng.gauss(confidence_after if after else 0.9, 0.03)))
        yield PredictionEvent(f"r{i}", "m", "1", float(i), {"x": rng.gauss(0, 1)}, 1 - truth if wrong else truth,
                              confidence)
        if previous is not None:
            yield previous
        previous = LabelEvent(f"r{i}", "m", float(i), label=truth) if labels_until is None or i < labels_until else None


def fleet_run(stream) -> list[tuple[int, str, str]]:
    fleet = ModelFleet()
    return [(i, d.kind.value, d.detector) for i, e in enumerate(stream) for d in fleet.observe(e)]


def test_labelled_stationary_traffic_is_quiet():
    assert fleet_run(labelled_traffic(n=30_000, at=30_000)) == []


def test_error_rate_rise_through_late_labels():
    # The wrong answers also move the prediction mix (30% -> 36% positive), which the class mix sees later.
    assert fleet_run(labelled_traffic(error_after=0.25)) == [(8608, "performance_drift", "error_rate_adwin"),
                                                             (13565, "prediction_drift", "class_mix")]


def test_label_drift_when_the_ground_truth_mix_moves():
    # The classifier stays as right as before: only the share of positives in the truth moved.
    # The predictions follow the truth, so their mix moves too.
    assert fleet_run(labelled_traffic(positive_after=0.45)) == [(8544, "label_drift", "class_mix"),
                                                                (9405, "prediction_drift", "class_mix")]


def test_estimated_accuracy_drop_is_reported_while_labels_are_missing():
    # Labels stop at 3000; confidence falls at 4000: the calibrated estimate reports the decay, the
    # confidence drop too (the users' view), and no label can confirm either yet.
    found = fleet_run(labelled_traffic(confidence_after=0.8, labels_until=3000))
    assert found == [(7111, "confidence_drop", "adwin_mean_shift"),
                     (7255, "performance_drift", "confidence_based_estimate")]


def test_estimate_evidence_says_it_is_an_estimate():
    fleet = ModelFleet()
    found = [d for e in labelled_traffic(confidence_after=0.8, labels_until=3000) for d in fleet.observe(e)]
    estimate = found[-1]
    assert estimate.evidence["estimated"] is True and estimate.evidence["calibration_labels"] == 2000  # frozen after 2000 labels
    assert "before labels confirm it" in estimate.summary
    state = fleet.monitors.get(("m", "1", None)).state()
    assert 0.8 < state["estimated_accuracy"] < 0.88  # confidence ~0.8, calibrated by labels seen at 0.8-0.9
    assert state["accuracy"] == pytest.approx(0.9, abs=0.02)


def test_no_estimate_detection_without_any_label_to_calibrate_it():
    found = fleet_run(labelled_traffic(confidence_after=0.8, labels_until=0))
    assert [k for _, k, _ in found] == ["confidence_drop"]


def test_detections_are_kinds_the_rules_know():
    assert DetectionKind("label_drift") is DetectionKind.LABEL_DRIFT


def test_error_rate_fall_is_reported_as_info():
    fleet = ModelFleet()
    found = [d for e in labelled_traffic(error_after=0.02, n=12_000) for d in fleet.observe(e)
             if d.kind == DetectionKind.PERFORMANCE_DRIFT]
    assert [(d.severity.value, d.evidence["direction"]) for d in found] == [("info", "down")]
    assert "fell" in found[0].summary


def test_class_mix_of_whole_number_predictions():
    # A frozen classifier whose inputs moved: its 0/1 outputs shift from 50/50 to 40/60 (the mean moves by a
    # fifth of a standard deviation, below the mean-shift gate; the class mix sees it).
    rng = random.Random(9)
    monitor = ModelMonitor("m", "1")
    found = []
    for i in range(8000):
        prediction = int(rng.random() < (0.5 if i < 4000 else 0.6))
        event = PredictionEvent(f"r{i}", "m", "1", float(i), {"x": 1.0}, prediction)
        found += [(i, d.detector, d.evidence["class"]) for d in monitor.observe_prediction(event)]
    assert found == [(5247, "class_mix", "1")]


def test_a_change_of_variance_is_a_spread_shift():
    rng = random.Random(11)
    monitor = ModelMonitor("m", "1")
    found = []
    for i in range(6000):
        x = rng.gauss(5.0, 1.0 if i < 3000 else 2.0)  # same mean, twice the spread
        event = PredictionEvent(f"r{i}", "m", "1", float(i), {"x": x}, 1)
        found += [(i, d.evidence["statistic"], d.entity["feature"]) for d in monitor.observe_prediction(event)]
    assert found == [(3056, "adwin_spread_shift", "x")]
