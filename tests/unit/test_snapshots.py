"""Every monitor survives a snapshot: restored half-way through a seeded stream, it reports exactly what
the original reports on the rest of the stream. One sweep over every class, River's estimator-check style."""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections import OrderedDict
from typing import Any, Callable, Iterator

import pytest

import models
from models import snapshot
from models.anomaly import SeriesAnomaly
from models.categorical import CategoryShift, ClassMix
from models.fleet import ModelFleet, ServiceFleet
from models.label_join import LabelJoin
from models.model_monitor import ModelMonitor
from models.performance import ConfidenceEstimate, ErrorRate
from models.quality import RangeWatch, SchemaWatch
from models.schema import InfraEvent, LabelEvent, PredictionEvent
from models.service_monitor import ServiceMonitor
from models.signals import MeanShift


def gaussian_steps(seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0 if i < 3000 else 2, 1) for i in range(6000)]


def bits(seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.random() < (0.1 if i < 3000 else 0.3)) for i in range(6000)]


def labels(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [rng.choices("abc", (5, 3, 2) if i < 3000 else (2, 3, 5))[0] for i in range(6000)]


def model_traffic(seed: int = 0) -> Iterator[PredictionEvent | LabelEvent]:
    rng = random.Random(seed)
    for i in range(6000):
        after = i >= 3000
        truth = rng.choice(["yes", "no"])
        wrong = rng.random() < (0.3 if after else 0.1)
        guess = ("no" if truth == "yes" else "yes") if wrong else truth
        features = {"x": rng.gauss(3 if after else 0, 1), "plan": rng.choice("ab" if not after else "abc")}
        yield PredictionEvent(f"r{i}", "m", "1", float(i), features, guess, rng.uniform(0.7, 1.0), latency_ms=10.0)
        yield LabelEvent(f"r{i}", "m", float(i), label=truth)


def infra_traffic(seed: int = 0) -> Iterator[InfraEvent]:
    rng = random.Random(seed)
    for i in range(6000):
        if i % 10 == 0:
            yield InfraEvent("api", "freshness_seconds", 300.0 if 4000 < i < 4100 else rng.gauss(30, 5), float(i))
        else:
            yield InfraEvent("api", "cpu" if i % 2 else "memory", rng.gauss(50, 5) + (60 if i > 3500 else 0), float(i))


def stepper(method: str) -> Callable[[Any, Any], Any]:
    return lambda obj, x: getattr(obj, method)(x)


def join_step(join: LabelJoin, event: PredictionEvent | LabelEvent) -> Any:
    if isinstance(event, PredictionEvent):
        join.remember(event)
        return len(join)
    return join.match(event.request_id)


def model_step(monitor: ModelMonitor, event: PredictionEvent | LabelEvent) -> Any:
    if isinstance(event, PredictionEvent):
        return monitor.observe_prediction(event)
    return monitor.observe_outcome("yes", event, 0.9)


# class -> (factory, stream, step, restore)
CASES: dict[type, tuple[Callable[[], Any], Callable[[], Any], Callable[[Any, Any], Any], Callable[[bytes], Any]]] = {
    MeanShift: (MeanShift, gaussian_steps, stepper("update"), MeanShift.restore),
    CategoryShift: (CategoryShift, labels, stepper("update"), CategoryShift.restore),
    ClassMix: (ClassMix, labels, stepper("update"), ClassMix.restore),
    ErrorRate: (ErrorRate, bits, stepper("update"), ErrorRate.restore),
    ConfidenceEstimate: (ConfidenceEstimate, lambda: [0.9 if i < 3000 else 0.8 for i in range(6000)],
                         stepper("update"), ConfidenceEstimate.restore),
    SeriesAnomaly: (SeriesAnomaly, lambda: [x if i % 700 else 30.0 for i, x in enumerate(gaussian_steps())],
                    stepper("update"), SeriesAnomaly.restore),
    RangeWatch: (RangeWatch, lambda: [x if i < 3500 or i % 5 else 40.0 for i, x in enumerate(gaussian_steps())],
                 stepper("update"), RangeWatch.restore),
    SchemaWatch: (lambda: SchemaWatch(warmup=10, vanish_after=50),
                  lambda: [["a", "b"] if i < 3000 else ["a", "c"] for i in range(6000)],
                  stepper("update"), SchemaWatch.restore),
    LabelJoin: (lambda: LabelJoin(max_pending=100, ttl_s=50), model_traffic, join_step, LabelJoin.restore),
    ModelMonitor: (lambda: ModelMonitor("m", "1"), model_traffic, model_step, ModelMonitor.restore),
    ServiceMonitor: (lambda: ServiceMonitor("api"), infra_traffic, stepper("observe"), ServiceMonitor.restore),
    ModelFleet: (ModelFleet, model_traffic, stepper("observe"), ModelFleet.restore),
    ServiceFleet: (ServiceFleet, infra_traffic, stepper("observe"), ServiceFleet.restore),
}


def snapshottable_classes() -> set[type]:
    """Every monitor class (a :class:`Snapshottable`) and every fleet: a new one must join the sweep."""
    found: set[type] = set()
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != module.__name__:
                continue
            if (issubclass(value, snapshot.Snapshottable) and value is not snapshot.Snapshottable) or (
                    module.__name__ == "models.fleet" and hasattr(value, "snapshot")):
                found.add(value)
    return found


def test_the_sweep_covers_every_monitor_class():
    assert snapshottable_classes() == set(CASES)


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_restored_monitor_continues_exactly_like_the_original(cls):
    factory, stream, step, restore = CASES[cls]
    events = list(stream())
    original = factory()
    half = len(events) // 2 - 7  # mid-window, mid-warm-up of nothing in particular
    for event in events[:half]:
        step(original, event)
    blob = original.snapshot()
    assert isinstance(blob, bytes) and blob.startswith(snapshot.MAGIC)
    restored = restore(blob)
    assert type(restored) is cls and restored is not original
    rest_original = [step(original, e) for e in events[half:]]
    rest_restored = [step(restored, e) for e in events[half:]]
    assert rest_restored == rest_original
    assert any(rest_original), "the stream should make the monitor report something after the restore point"


def test_a_snapshot_of_another_class_is_refused():
    with pytest.raises(snapshot.SnapshotError, match="holds a models.signals.MeanShift"):
        ErrorRate.restore(MeanShift().snapshot())


def test_a_snapshot_of_an_unknown_format_is_refused():
    blob = bytearray(MeanShift().snapshot())
    blob[len(snapshot.MAGIC)] = 99
    with pytest.raises(snapshot.SnapshotError, match="format 99"):
        MeanShift.restore(bytes(blob))
    with pytest.raises(snapshot.SnapshotError, match="not an emlops snapshot"):
        MeanShift.restore(b"\x80\x05garbage")


def test_fleets_checkpoint_per_kafka_key():
    fleet = ModelFleet()
    for model in ("a", "b"):
        for i in range(300):
            fleet.observe(PredictionEvent(f"{model}{i}", model, "1" if i % 2 else "2", float(i), {"x": float(i)}, 1))
    assert sorted(fleet) == ["a", "b"]
    blob = fleet.snapshot_key("a")
    other = ModelFleet()
    other.restore_key("a", blob)
    assert other.keys() == ["a"]
    assert sorted(k for k in other.monitors) == [("a", "1", None), ("a", "2", None)]
    assert len(other.joins.get("a")) == 300
    with pytest.raises(snapshot.SnapshotError, match="not 'b'"):
        other.restore_key("b", blob)

    services = ServiceFleet()
    services.observe(InfraEvent("api", "cpu", 1.0, 0.0))
    services.observe(InfraEvent("api", "cpu", 1.0, 0.0, source_kind="host"))
    services.observe(InfraEvent("db", "cpu", 1.0, 0.0))
    restored = ServiceFleet()
    restored.restore_key("api", services.snapshot_key("api"))
    assert list(restored) == ["api"] and sorted(restored.monitors) == [("api", "host"), ("api", "service")]


def _as_tuple_per_feature(monitor: ModelMonitor) -> dict:
    """A ModelMonitor's state in the layout of an earlier one: a (mean, spread, range) tuple per feature name
    and the latest values by name, rather than a bank of signals and arrays."""
    state = monitor.__getstate__()
    signals = state.pop("_bank").signals  # a restored bank: every signal holds its own state
    index, ranges, last = state.pop("_feature_index"), state.pop("_ranges"), state.pop("_last")
    state["_numeric"] = {name: (signals[2 * k], signals[2 * k + 1], ranges[k]) for name, k in index.items()}
    state["_last"] = {name: float(last[k]) for name, k in index.items() if last[k] == last[k]}
    return state


def _as_dict_per_kind(monitor: ModelMonitor) -> dict:
    """... and in that of an earlier one still: mean, spread and range monitors in a dict each."""
    state = _as_tuple_per_feature(monitor)
    numeric = state.pop("_numeric")
    state["_features"], state["_spreads"], state["_ranges"] = (
        {name: watch[k] for name, watch in numeric.items()} for k in range(3))
    return state


@pytest.mark.parametrize("layout", [_as_tuple_per_feature, _as_dict_per_kind])
def test_a_model_monitor_snapshot_of_an_earlier_layout_restores_and_carries_on(layout):
    events = list(model_traffic())
    half = len(events) // 2
    original = ModelMonitor("m", "1")
    for e in events[:half]:
        model_step(original, e)
    restored = ModelMonitor.__new__(ModelMonitor)
    restored.__setstate__(layout(ModelMonitor.restore(original.snapshot())))  # what unpickling an old one does
    rest = [model_step(original, e) for e in events[half:]]
    assert [model_step(restored, e) for e in events[half:]] == rest and any(rest)
    assert restored.state() == original.state()


def test_a_model_snapshot_holds_exactly_its_own_versions_while_monitors_are_evicted():
    from models.config import MonitorConfig

    fleet = ModelFleet(MonitorConfig(max_keys=4))
    for i in range(30):  # 5 models x 2 versions through 4 places: most monitors get evicted on the way
        fleet.observe(PredictionEvent(request_id=f"r{i}", model=f"m{i % 5}", version=str(i % 2), timestamp=i,
                                      features={"x": float(i)}, prediction=1))
    held = {key[0] for key in fleet.monitors}
    assert len(fleet.monitors) == 4 and fleet.monitors.evictions == 26
    assert set(fleet.keys()) == held | {model for model, _ in fleet.joins.items()}
    for model in fleet.keys():
        copy = ModelFleet(MonitorConfig(max_keys=4))
        copy.restore_key(model, fleet.snapshot_key(model))
        assert set(copy.monitors) == {key for key in fleet.monitors if key[0] == model}
    fleet.forget_key("m4")
    assert "m4" not in fleet.keys() and all(key[0] != "m4" for key in fleet.monitors)


def _join_with_backlog(seed: int = 3) -> tuple[LabelJoin, list[PredictionEvent]]:
    """A join holding hundreds of predictions, of two versions and three segments, whose labels come late,
    out of order, or never; it has evicted and expired some on the way."""
    rng = random.Random(seed)
    join = LabelJoin(max_pending=300, ttl_s=600.0)
    events = [PredictionEvent(f"r{i}", "m", rng.choice(["1", "2"]), float(i) + (500 if i == 700 else 0),
                              {}, rng.choice(["yes", "no", 3, 0.5]), rng.choice([None, rng.random()]),
                              segment=rng.choice([None, "eu", "us"])) for i in range(1500)]
    for event in events[:900]:
        join.remember(event)
        if rng.random() < 0.2:
            join.match(f"r{rng.randrange(900)}")
    assert join.evicted and join.expired and join.unmatched and 250 < len(join) <= 300
    return join, events


def test_a_label_join_restores_every_pending_prediction_in_order():
    join, events = _join_with_backlog()
    restored = LabelJoin.restore(join.snapshot())
    assert list(restored.items()) == list(join.items())
    assert (restored.evicted, restored.expired, restored.unmatched) == (join.evicted, join.expired, join.unmatched)
    for event in events[900:]:  # then both evict, expire and match the same ones
        for j in (join, restored):
            j.remember(event)
        assert restored.match(f"r{int(event.timestamp) % 1000}") == join.match(f"r{int(event.timestamp) % 1000}")
    assert list(restored.items()) == list(join.items())
    assert (restored.evicted, restored.expired, restored.unmatched) == (join.evicted, join.expired, join.unmatched)


@pytest.mark.parametrize("layout", ["by request id", "a list per field"])
def test_a_label_join_snapshot_of_earlier_layouts_restores(layout):
    """What unpickling a join of before 2026-11-28 (an ordered dict of pending predictions by request id) or
    of that day (the same pickled as a list per field) hands to ``__setstate__``."""
    join, events = _join_with_backlog()
    pending = OrderedDict(join.items())
    counts = {"max_pending": join.max_pending, "ttl_s": join.ttl_s, "evicted": join.evicted,
              "expired": join.expired, "unmatched": join.unmatched}
    held = (list(pending), *([p[i] for p in pending.values()] for i in range(5)))
    restored = LabelJoin.__new__(LabelJoin)
    restored.__setstate__({**counts, "_pending": pending} if layout == "by request id" else {**counts, "_columns": held})
    assert list(restored.items()) == list(join.items()) and restored.evicted == join.evicted
    for event in events[900:]:
        for j in (join, restored):
            j.remember(event)
        assert restored.match(f"r{int(event.timestamp) % 1000}") == join.match(f"r{int(event.timestamp) % 1000}")
    assert list(restored.items()) == list(join.items())


def test_half_space_trees_restore_node_for_node_and_score_alike():
    import pickle

    from river.anomaly import HalfSpaceTrees

    import models.half_space_trees  # noqa: F401 - registers the column form

    rng = random.Random(5)
    stream = [{"cpu": rng.random(), "memory": rng.random() ** 2, "lag": rng.random() * 0.1} for _ in range(900)]
    original = HalfSpaceTrees(n_trees=4, height=5, window_size=50, seed=7)
    assert pickle.loads(pickle.dumps(original)).trees == []  # before the first value: no trees yet
    for x in stream[:430]:
        original.learn_one(x)
    blob = pickle.dumps(original, protocol=5)
    assert b"models.half_space_trees" in blob and b"PaddedBranch" not in blob  # columns, not nodes
    restored = pickle.loads(blob)

    def nodes(hst: HalfSpaceTrees) -> list[tuple]:
        return [(type(n).__name__, getattr(n, "feature", None), getattr(n, "threshold", None), n.l_mass, n.r_mass)
                for tree in hst.trees for n in tree.iter_dfs()]

    assert nodes(restored) == nodes(original) and len(nodes(original)) == 4 * 63
    assert [[id(n) for n in tree.iter_dfs()] for tree in restored.trees] == [
        [id(n) for n in nodes_] for nodes_ in restored._tree_nodes]  # the flat lists hold the trees' own nodes
    rest = []
    for x in stream[430:]:
        rest.append((original.score_one(x), restored.score_one(x)))
        original.learn_one(x)
        restored.learn_one(x)
    assert all(a == b for a, b in rest) and len({a for a, _ in rest}) > 10
    assert restored.rng.random() == original.rng.random()


def test_a_label_join_whose_request_ids_are_not_valid_unicode_still_snapshots():
    """Its request ids are written as JSON, quicker than pickling them; one JSON cannot hold (a lone
    surrogate: the decoders never make one, code that builds events could) keeps them pickled."""
    join, events = _join_with_backlog()
    odd = PredictionEvent("r\udcff", "m", "1", events[899].timestamp, {}, 1)
    join.remember(odd)
    restored = LabelJoin.restore(join.snapshot())
    assert list(restored.items()) == list(join.items())
    assert restored.match("r\udcff") == join.match("r\udcff") is not None
