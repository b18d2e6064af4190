"""Model and service monitors on seeded streams, the label join, the registry and the monitor config."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator

import pytest

from models.config import MonitorConfig
from models.fleet import ModelFleet, ServiceFleet
from models.label_join import LabelJoin, Pending
from models.model_monitor import ModelMonitor
from models.registry import Registry
from models.schema import Detection, DetectionKind, InfraEvent, LabelEvent, PredictionEvent, Severity

Found = list[tuple[int, Detection]]


def observed(events: Iterable, observe) -> Found:
    """``(index, detection)`` for every detection ``observe`` returns while fed the events in order."""
    return [(i, d) for i, event in enumerate(events) for d in observe(event)]


def summary(found: Found) -> list[tuple[int, str, dict[str, str]]]:
    return [(i, d.kind.value, d.entity) for i, d in found]


# --- ModelMonitor: one model version's inputs and outputs --------------------------------------------


@dataclass(frozen=True)
class Regime:
    """How a model's traffic looks: feature means, confidence, latency and the share of missing values."""

    a: float = 0.0
    b: float = 5.0
    c: float = -3.0
    confidence: float = 0.9
    latency: float = 20.0
    latency_std: float = 3.0
    missing: float = 0.0


NORMAL = Regime()


def predictions(after: Regime, seed: int = 1, n: int = 6000, at: int = 3000, before: Regime = NORMAL,
                model: str = "m", version: str = "1") -> Iterator[PredictionEvent]:
    rng = random.Random(seed)
    for i in range(n):
        r = after if i >= at else before
        features = {"a": rng.gauss(r.a, 1), "b": rng.gauss(r.b, 1), "c": rng.gauss(r.c, 2)}
        features = {k: None if rng.random() < r.missing else v for k, v in features.items()}
        yield PredictionEvent(
            request_id=f"{version}-{i}", model=model, version=version, timestamp=float(i), features=features,
            prediction=rng.randint(0, 1), confidence=min(max(rng.gauss(r.confidence, 0.03), 0.0), 1.0),
            latency_ms=max(rng.gauss(r.latency, r.latency_std), 0.0),
        )


def monitor_run(after: Regime, **kwargs) -> Found:
    monitor = ModelMonitor("m", "1")
    return observed(predictions(after, **kwargs), monitor.observe_prediction)


MODEL = {"model": "m", "version": "1"}

MODEL_CASES = [
    ("no change", NORMAL, []),
    ("feature b drifts", replace(NORMAL, b=6.5), [(3023, "feature_drift", {**MODEL, "feature": "b"})]),
    ("feature a drifts down", replace(NORMAL, a=-1.5), [(3023, "feature_drift", {**MODEL, "feature": "a"})]),
    ("confidence drops", replace(NORMAL, confidence=0.8), [(3119, "confidence_drop", MODEL)]),
    ("confidence rises", replace(NORMAL, confidence=0.97), []),
    ("latency doubles", replace(NORMAL, latency=40.0), [(3009, "latency_spike", MODEL)]),
    ("latency halves", replace(NORMAL, latency=10.0), []),
    ("30% of values go missing", replace(NORMAL, missing=0.3), [(3039, "data_quality", MODEL)]),
]


@pytest.mark.parametrize("after, expected", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_model_monitor_reports_what_changed_and_nothing_else(after, expected):
    assert summary(monitor_run(after)) == expected


def test_feature_drift_evidence_names_the_feature_and_the_move():
    (_, d), = monitor_run(replace(NORMAL, b=6.5))
    assert d.severity == Severity.WARNING and 0 < d.score < 1
    assert d.evidence["direction"] == "up"
    assert d.evidence["before_mean"] == pytest.approx(5.0, abs=0.1)
    assert "feature 'b'" in d.summary and "drifted up" in d.summary


def test_bigger_change_scores_higher():
    (_, small), = monitor_run(replace(NORMAL, confidence=0.85))
    (_, large), = monitor_run(replace(NORMAL, confidence=0.6))
    assert small.score < large.score
    assert large.severity == Severity.CRITICAL


def test_data_quality_counts_nan_as_missing_and_strings_as_present():
    monitor = ModelMonitor("m", "1")
    events = [PredictionEvent(f"r{i}", "m", "1", float(i), {"x": 1.0, "plan": "pro"}, 1) for i in range(400)]
    events += [PredictionEvent(f"r{i}", "m", "1", float(i), {"x": float("nan"), "plan": "pro"}, 1)
               for i in range(400, 800)]
    (i, d), = observed(events, monitor.observe_prediction)
    assert (i, d.kind) == (431, DetectionKind.DATA_QUALITY)
    assert d.evidence["before_mean"] < 0.05  # the string feature never counted as missing
    assert d.evidence["after_mean"] <= 0.5  # at most half the features of an event are missing here


def test_sixfold_latency_jump_is_critical_and_reported_at_its_size():
    before = replace(NORMAL, latency=40.0, latency_std=6.0)
    after = replace(NORMAL, latency=240.0, latency_std=30.0)
    (_, d), = monitor_run(after, before=before, at=1500, n=3000)
    assert d.kind == DetectionKind.LATENCY_SPIKE
    assert d.severity == Severity.CRITICAL
    assert d.evidence["after_mean"] > 180


def test_model_monitor_state_and_segment_labels():
    monitor = ModelMonitor("m", "1", segment="eu")
    observed(predictions(NORMAL, n=300), monitor.observe_prediction)
    state = monitor.state()
    assert (state["segment"], state["predictions"], state["labelled"], state["accuracy"]) == ("eu", 300, 0, None)
    assert state["confidence"] == pytest.approx(0.9, abs=0.05)
    assert set(state["features"]) == {"a", "b", "c"}


# --- ModelFleet: labels joined to predictions, late and out of order ---------------------------------


def fleet_traffic(seed: int = 3, n: int = 4000, degrade_at: int = 2000) -> Iterator[PredictionEvent | LabelEvent]:
    """Two versions of one model; only version 2 starts erring at ``degrade_at``. Each label arrives 10-60
    rounds after its prediction, and the labels due in one round come shuffled."""
    rng = random.Random(seed)
    waiting: list[tuple[int, LabelEvent]] = []
    for i in range(n):
        for version in ("1", "2"):
            truth = int(rng.random() < 0.3)
            error_rate = 0.35 if version == "2" and i >= degrade_at else 0.05
            guess = truth if rng.random() > error_rate else 1 - truth
            request = f"v{version}-{i}"
            yield PredictionEvent(request, "m", version, float(i), {"x": rng.gauss(0, 1)}, guess, 0.9, 10.0)
            waiting.append((i + rng.randint(10, 60), LabelEvent(request, "m", float(i), label=truth)))
        due = [label for at, label in waiting if at <= i]
        waiting = [(at, label) for at, label in waiting if at > i]
        rng.shuffle(due)
        yield from due


def test_performance_drift_is_found_on_the_version_whose_labels_disagree():
    fleet = ModelFleet()
    found = observed(fleet_traffic(), fleet.observe)
    # Version 2's wrong answers also move its prediction mix (30% -> 44% positive): a prediction drift.
    assert summary(found) == [(8333, "performance_drift", {"model": "m", "version": "2"}),
                              (9073, "prediction_drift", {"model": "m", "version": "2"})]
    d = found[0][1]
    assert d.severity == Severity.CRITICAL
    assert d.evidence["before_mean"] == pytest.approx(0.05, abs=0.02)
    assert 0.9 < d.evidence["running_accuracy"] < 0.95
    assert d.evidence["labelled"] == d.evidence["samples"]
    assert fleet.pending_labels() < 2 * 61  # at most ~60 rounds of two versions wait for their label
    stable = fleet.monitors.get(("m", "1", None))
    assert stable.labelled > 3900 and stable.correct / stable.labelled == pytest.approx(0.95, abs=0.01)


def test_label_for_an_unknown_prediction_is_counted_not_fatal():
    fleet = ModelFleet()
    assert fleet.observe(LabelEvent("never-seen", "m", 0.0, label=1)) == []
    assert fleet.joins.get("m").unmatched == 1


def test_negative_feedback_is_reported_from_feedback_only_labels():
    fleet = ModelFleet()
    rng = random.Random(5)
    found: Found = []
    for i in range(1000):
        fleet.observe(PredictionEvent(f"r{i}", "m", "1", float(i), {"x": 1.0}, "answer", 0.9))
        rating = rng.gauss(0.6 if i < 500 else -0.2, 0.2)
        found += [(i, d) for d in fleet.observe(LabelEvent(f"r{i}", "m", float(i), feedback=max(-1, min(1, rating))))]
    assert summary(found) == [(527, "negative_feedback", {"model": "m", "version": "1"})]


# --- ServiceMonitor: multivariate anomaly and freshness ----------------------------------------------

METRICS = {"cpu": (45.0, 6.0), "memory": (62.0, 3.0), "error_rate": (0.01, 0.003), "p99_ms": (80.0, 10.0)}


def infra(seed: int, n: int, spike: str | None = None, at: int = 0, until: int | None = None,
          freshness_every: int = 0) -> Iterator[InfraEvent]:
    """Metrics in turn from one source; ``spike`` reads 12 sigma high from ``at`` until ``until``."""
    rng = random.Random(seed)
    names = list(METRICS)
    for i in range(n):
        if freshness_every and i % freshness_every == 0:
            yield InfraEvent("api", "freshness_seconds", rng.gauss(30, 8), float(i))
            continue
        metric = names[i % len(names)]
        mean, std = METRICS[metric]
        value = mean + 12 * std if metric == spike and at <= i < (until or n) else rng.gauss(mean, std)
        yield InfraEvent("api", metric, value, float(i))


def service_run(events: Iterable[InfraEvent], config: MonitorConfig | None = None) -> Found:
    return observed(events, ServiceFleet(config).observe)


def test_infra_anomaly_names_the_metric_that_spiked():
    found = service_run(infra(0, 4000, spike="memory", at=3000))
    # The 3rd consecutive high memory reading (persistence 3), then once per 300-event cooldown.
    assert [i for i, _ in found] == [3009, 3309, 3609, 3909]
    assert {d.entity["metric"] for _, d in found} == {"memory"}
    d = found[0][1]
    assert d.kind == DetectionKind.INFRA_ANOMALY
    assert d.entity == {"source": "api", "source_kind": "service", "metric": "memory"}
    assert d.severity == Severity.CRITICAL
    assert d.evidence["baseline_mean"] == pytest.approx(62.0, abs=0.5)
    assert d.evidence["z"] > 8


@pytest.mark.parametrize("readings", [1, 2])
def test_fewer_outliers_than_the_persistence_are_not_an_incident(readings):
    # Memory is every 4th event: `readings` spiked readings, then normal again.
    assert service_run(infra(0, 4000, spike="memory", at=3000, until=3000 + 4 * readings)) == []


def test_no_anomaly_during_warm_up():
    assert service_run(infra(0, 400, spike="memory", at=200)) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_stationary_multi_metric_stream_raises_nothing(seed):
    assert service_run(infra(seed, 50_000, freshness_every=10)) == []


def freshness(*segments: tuple[int, float], seed: int = 2) -> Iterator[InfraEvent]:
    """Data age readings of a pipeline: ``(count, age)`` segments; an age of 0 means the usual 30 +- 8 s."""
    rng = random.Random(seed)
    i = 0
    for count, age in segments:
        for _ in range(count):
            value = age or max(rng.gauss(30, 8), 1.0)
            yield InfraEvent("etl", "freshness_seconds", value, float(i), source_kind="pipeline", model="churn")
            i += 1


def test_stale_pipeline_is_reported_once_per_episode_and_re_arms_after_recovery():
    found = service_run(freshness((100, 0), (10, 300.0), (20, 0), (10, 400.0), (5, 0)))
    assert summary(found) == [
        (100, "pipeline_stale", {"source": "etl", "source_kind": "pipeline", "metric": "freshness_seconds",
                                 "model": "churn"}),
        (130, "pipeline_stale", {"source": "etl", "source_kind": "pipeline", "metric": "freshness_seconds",
                                 "model": "churn"}),
    ]
    first, second = found[0][1], found[1][1]
    assert first.evidence["usual"] == pytest.approx(30, abs=3)
    assert second.evidence["usual"] == pytest.approx(30, abs=3)  # stale readings stay out of the baseline
    assert first.severity == Severity.CRITICAL  # 10x the usual age


def test_stale_needs_the_absolute_floor_and_a_warmed_up_baseline():
    # 55 s is 3x a usual 18 s but under the 60 s floor; a 500 s reading inside the warm-up is not judged.
    assert service_run(freshness((5, 0), (1, 500.0), (100, 18.0), (10, 55.0))) == []


def test_service_fleet_keeps_one_monitor_per_source():
    fleet = ServiceFleet()
    fleet.observe(InfraEvent("api", "cpu", 1.0, 0.0))
    fleet.observe(InfraEvent("api", "cpu", 1.0, 0.0, source_kind="host"))
    fleet.observe(InfraEvent("api", "memory", 1.0, 0.0))
    assert sorted(fleet.monitors) == [("api", "host"), ("api", "service")]


# --- LabelJoin and Registry: bounded memory, losses counted -----------------------------------------


def remember_all(join: LabelJoin, *timestamps: float) -> None:
    for i, t in enumerate(timestamps):
        join.remember(PredictionEvent(f"r{i}", "m", "1", t, {}, 1))


def test_label_join_evicts_the_oldest_beyond_max_pending():
    join = LabelJoin(max_pending=3)
    remember_all(join, 0, 1, 2, 3, 4)
    assert (len(join), join.evicted, join.expired) == (3, 2, 0)
    assert join.match("r0") is None and join.match("r1") is None
    assert join.match("r4").timestamp == 4
    assert (len(join), join.unmatched) == (2, 2)


def test_label_join_expires_predictions_older_than_the_ttl():
    join = LabelJoin(ttl_s=10)
    remember_all(join, 0, 5, 12, 20)  # at t=20 the horizon is 10: r0 and r1 expire
    assert (len(join), join.expired, join.evicted) == (2, 2, 0)
    assert join.match("r1") is None
    assert join.match("r2").prediction == 1


def test_label_join_matches_once():
    join = LabelJoin()
    remember_all(join, 0)
    assert join.match("r0") is not None
    assert join.match("r0") is None
    assert join.unmatched == 1


class ReferenceJoin:
    """The join's rules, written the plain way (one entry per prediction in an ordered dict): what the
    columns with their holes, head and cuts must match."""

    def __init__(self, max_pending: int, ttl_s: float) -> None:
        self.max_pending, self.ttl_s = max_pending, ttl_s
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.evicted = self.expired = self.unmatched = 0

    def remember(self, e: PredictionEvent) -> None:
        self.pending.pop(e.request_id, None)
        self.pending[e.request_id] = Pending(e.version, e.segment, e.prediction, e.timestamp, e.confidence)
        if len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)
            self.evicted += 1
        while self.pending and next(iter(self.pending.values())).timestamp < e.timestamp - self.ttl_s:
            self.pending.popitem(last=False)
            self.expired += 1

    def match(self, request_id: str) -> Pending | None:
        found = self.pending.pop(request_id, None)
        self.unmatched += found is None
        return found


@pytest.mark.parametrize("labelled, max_pending", [(0.0, 500), (0.3, 500), (0.97, 20_000)])
def test_label_join_keeps_the_rules_of_a_join_by_request_id(labelled, max_pending):
    """Predictions sent again, labels soon, late, twice or never, gaps beyond the ttl: the same matches and
    counts as the plain join, through many cuts of the columns. Its columns stay within four times what it
    holds (plus 2,048), also when nearly every label comes soon and the few that never come hold the head
    back: the holes behind those are cut out."""
    rng = random.Random(int(labelled * 100))
    join, reference = LabelJoin(max_pending, ttl_s=400.0), ReferenceJoin(max_pending, 400.0)
    compactions = []
    compact = join._compact
    join._compact = lambda: (compactions.append(len(join)), compact())
    t, sent = 0.0, 0
    for step in range(40_000):
        t += 450 if step % 15_000 == 14_999 else rng.random() * 0.05
        if rng.random() < 0.5:
            rid = f"r{sent - rng.randrange(50)}" if rng.random() < 0.02 else f"r{sent}"
            sent += 1
            event = PredictionEvent(rid, "m", rng.choice(["1", "2"]), t, {}, rng.choice(["a", "b", 1, 0.5, True]),
                                    rng.choice([None, rng.random()]), segment=rng.choice([None, "eu"]))
            join.remember(event)
            reference.remember(event)
            assert len(join._ids) - join._head <= 2 * len(join) + 1024 and join._head <= max(1024, len(join._ids) / 2)
        elif rng.random() < labelled or rng.random() < 0.02:
            rid = f"r{sent - 1 - min(sent - 1, int(rng.expovariate(1 / 30)))}"
            assert join.match(rid) == reference.match(rid)
        assert len(join) == len(reference.pending)
    assert list(join.items()) == list(reference.pending.items())
    assert (join.evicted, join.expired, join.unmatched) == (reference.evicted, reference.expired, reference.unmatched)
    # The run went through what it is meant to test: expiry, and cuts after evictions or of the holes.
    assert join.expired and ((join.evicted and join._cut) if labelled < 0.9 else len(compactions) >= 3)


@pytest.mark.parametrize("params", [{"max_pending": 0}, {"ttl_s": 0}, {"ttl_s": -5}])
def test_label_join_rejects_bad_bounds(params):
    with pytest.raises(ValueError):
        LabelJoin(**params)


def test_registry_evicts_the_least_recently_used_key():
    made: list[str] = []
    registry: Registry[str, str] = Registry(lambda key: made.append(key) or key.upper(), max_keys=2)
    assert [registry.get(k) for k in ("a", "b", "a", "c")] == ["A", "B", "A", "C"]
    assert list(registry) == ["a", "c"]  # "b" was least recently used
    assert (len(registry), registry.evictions) == (2, 1)
    registry.get("b")  # comes back as a new monitor, pushing out "a"
    assert made == ["a", "b", "c", "b"]
    assert list(registry) == ["c", "b"] and registry.evictions == 2


def test_registry_rejects_zero_capacity():
    with pytest.raises(ValueError, match="max_keys must be >= 1"):
        Registry(str, max_keys=0)


def test_fleet_bounds_monitored_models_by_max_keys():
    fleet = ModelFleet(MonitorConfig(max_keys=2))
    for model in ("a", "b", "c"):
        fleet.observe(PredictionEvent("r", model, "1", 0.0, {}, 1))
    assert len(fleet.monitors) == 2 and fleet.monitors.evictions == 1


# --- MonitorConfig -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, message",
    [
        ({"drift_delta": 0}, r"drift_delta must be in \(0, 1\)"),
        ({"drift_delta": 1.5}, r"drift_delta must be in \(0, 1\)"),
        ({"anomaly_threshold": 1.0}, r"anomaly_threshold must be in \(0, 1\)"),
        ({"drift_min_samples": 0}, r"drift_min_samples must be >= 1"),
        ({"pending_max": 0}, r"pending_max must be >= 1"),
        ({"hst_window": 0}, r"hst_window must be >= 1"),
        ({"max_keys": -1}, r"max_keys must be >= 1"),
        ({"stale_factor": 1.0}, r"stale_factor must be > 1"),
    ],
)
def test_config_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        MonitorConfig(**values)


def test_config_overrides_are_typed_and_validated():
    config = MonitorConfig().with_overrides({"drift_min_samples": "500", "pending_ttl_s": "3600", "seed": 7})
    assert (config.drift_min_samples, config.pending_ttl_s, config.seed) == (500, 3600.0, 7)
    assert MonitorConfig().with_overrides({"freshness_metrics": ["lag_s"]}).freshness_metrics == ("lag_s",)
    with pytest.raises(ValueError, match=r"drift_delta must be in"):
        MonitorConfig().with_overrides({"drift_delta": "2"})


def test_config_rejects_unknown_overrides_by_name():
    with pytest.raises(ValueError, match=r"unknown monitor setting\(s\): drift_dleta, hst_tress"):
        MonitorConfig().with_overrides({"hst_tress": 3, "drift_dleta": 0.1, "seed": 1})


def test_config_override_of_a_tuple_with_one_name():
    assert MonitorConfig().with_overrides({"freshness_metrics": "lag_s"}).freshness_metrics == ("lag_s",)


@pytest.mark.parametrize("values", [{"pending_ttl_s": 0}, {"drift_cooldown": -1}, {"drift_min_effect": -1.0},
                                    {"anomaly_persistence": 0}])
def test_config_rejects_values_its_monitors_cannot_use(values):
    (name,) = values
    with pytest.raises(ValueError, match=f"^{name} must be"):
        MonitorConfig(**values)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        MonitorConfig().with_overrides({name: str(values[name])})  # as the environment spells it


def test_config_override_of_a_whole_number_setting_rejects_a_fraction():
    assert MonitorConfig().with_overrides({"drift_cooldown": "500"}).drift_cooldown == 500
    with pytest.raises(ValueError, match="whole number"):
        MonitorConfig().with_overrides({"drift_cooldown": 2.5})


def _ragged_events(seed: int, count: int) -> list[PredictionEvent]:
    """Events whose features come and go, change order and kind, go missing, and outnumber the cap."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        features: dict[str, Any] = {}
        for j in range(9):
            if (j == 7 and i < 800) or (j == 6 and rng.random() < 0.3):
                continue  # a feature that appears late, one that is optional
            r = rng.random()
            if r < 0.03:
                features[f"f{j}"] = None if r < 0.02 else float("nan")
            elif j == 2:
                features[f"f{j}"] = rng.choice(["a", "b"]) if i < 1500 else rng.choice(["a", "c"])
            elif j == 3 and 1000 < i < 1040:
                features[f"f{j}"] = "oops"  # a numeric feature that briefly carries strings
            elif j == 4:
                features[f"f{j}"] = rng.random() < (0.5 if i < 1800 else 0.9)  # booleans
            else:
                features[f"f{j}"] = rng.gauss(4.0 * j if i < 1600 else 5.0 * j, 1.0 + (i > 2200) * (j == 5) * 3)
        if rng.random() < 0.1:
            features = dict(reversed(list(features.items())))
        events.append(PredictionEvent(request_id=f"r{i}", model="m", version="1", timestamp=float(i),
                                      features=features, prediction=0.5, confidence=0.9))
    return events


def test_a_monitor_finds_the_same_whether_it_places_features_from_its_layouts_or_afresh():
    """Events with the same keys reuse one placement of their features (a layout); placing every event afresh
    must find the same detections and counts, through features that come and go, change kind or go missing."""
    events = _ragged_events(3, 3000)
    config = MonitorConfig(max_features=7, drift_min_samples=100, range_warmup=200)
    cached, fresh = ModelMonitor("m", "1", config=config), ModelMonitor("m", "1", config=config)
    found_cached, found_fresh = [], []
    for event in events:
        found_cached += [d.to_dict() for d in cached.observe_prediction(event)]
        fresh._layouts.clear()
        found_fresh += [d.to_dict() for d in fresh.observe_prediction(event)]
    kinds = {(d["kind"], d["detector"]) for d in found_cached}
    assert {("feature_drift", "adwin_mean_shift"), ("feature_drift", "category_shift"),
            ("data_quality", "out_of_range")} <= kinds
    assert found_cached == found_fresh
    assert cached.state() == fresh.state() and cached.unwatched_features > 0


def test_a_model_learns_its_numeric_values_together_or_one_by_one_to_the_same_end(monkeypatch):
    """Models with many numeric features learn them together, the others one by one; together means the
    compiled step (``models/_numeric.c``) where it was built and the event brings every feature, numpy
    otherwise. Every way must give the same detections and state, also for a model that crosses from one to
    another."""
    import models.model_monitor as model_monitor
    from models import signals

    compiled = signals._numeric  # None where it was not built: then every way is numpy or one by one
    events = _ragged_events(4, 3000)
    config = MonitorConfig(max_features=7, drift_min_samples=100, range_warmup=200)
    runs = []
    # (together from how many features, compiled): one by one; together with numpy only; together,
    # compiled where it can be; and switching between the three every 250 events.
    ways = [(10**9, True), (0, False), (0, True)]
    for way in (*ways, None):
        monitor, found = ModelMonitor("m", "1", config=config), []
        for i, event in enumerate(events):
            together_from, use_compiled = way or ways[i // 250 % 3]
            monkeypatch.setattr(model_monitor, "_TOGETHER_FROM", together_from)
            monkeypatch.setattr(signals, "_numeric", compiled if use_compiled else None)
            found += [d.to_dict() for d in monitor.observe_prediction(event)]
        runs.append((found, monitor.state(), monitor.snapshot()))
    assert len(runs[0][0]) > 5
    assert runs[0] == runs[1] == runs[2] == runs[3]  # the snapshots too, byte for byte
