"""The benchmark's traffic: a fleet of models and services, with labels and a few injected incidents.

Pure generation, no Kafka. Unlike ``app.traffic`` (four tiny demo models), each model here has 10-50
numeric features plus a couple of categorical ones, a share of its predictions get late labels, and
several services and pipelines report metrics, so the per-event cost is the one a real fleet sees.

Model and source names are picked so that Kafka's default partitioner (murmur2 of the key) spreads the
load evenly over the partitions; otherwise two workers could be limited by one hot partition and the
scaling figure would measure the hash, not the worker.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any, Callable, Counter, Iterator

import numpy as np
from aiokafka.partitioner import murmur2

PREDICTIONS = "predictions"
INFRASTRUCTURE = "infrastructure"

_MODEL_NAMES = (
    "churn", "fraud", "recommender", "credit-risk", "demand-forecast", "search-ranker", "eta", "pricing",
    "ad-ctr", "spam-filter", "ltv", "support-intent", "next-best-offer", "claims-triage", "inventory",
    "route-optimiser", "sentiment", "image-moderation", "lead-scoring", "anomaly-score",
)
_SERVICE_NAMES = (
    "fraud-api", "ranking-api", "feature-store", "gateway", "pricing-api", "model-server-a", "model-server-b",
    "redis-cache", "postgres-main", "scoring-batch", "embedding-svc", "auth-svc",
)
_PIPELINE_NAMES = ("feature-pipeline", "label-pipeline", "etl-nightly", "clickstream-etl", "embedding-refresh")
_METRICS = (
    ("cpu_utilisation", 45.0, 6.0, "%"),
    ("memory_utilisation", 62.0, 3.0, "%"),
    ("error_rate", 0.01, 0.003, "ratio"),
    ("p99_latency_ms", 80.0, 10.0, "ms"),
    ("requests_per_second", 220.0, 25.0, "1/s"),
)


def partition_of(key: str, partitions: int) -> int:
    """What aiokafka's (and the Java client's) default partitioner picks for this key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def balanced_names(pool: tuple[str, ...], count: int, partitions: int, suffix: str = "",
                   load: Counter[int] | None = None) -> list[str]:
    """``count`` names from ``pool`` (numbered variants if it runs out), each put on the partition with the
    fewest names so far; ``load`` carries the counts over from an earlier pick (sources of two kinds)."""
    load = load if load is not None else Counter()
    by_partition: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for name in [n + suffix for n in pool] + [f"{n}{suffix}-{i}" for i in range(2, 9) for n in pool]:
        by_partition[partition_of(name, partitions)].append(name)
    picked: list[str] = []
    for _ in range(count):
        open_ = [p for p in range(partitions) if by_partition[p]]
        if not open_:
            raise ValueError(f"cannot find {count} names for {partitions} partitions")
        p = min(open_, key=lambda q: (load[q], q))
        picked.append(by_partition[p].pop(0))
        load[p] += 1
    return picked


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    task: str  # "binary" (int 0/1 prediction, labelled), "multiclass" (string class) or "regression"
    numeric: int  # numeric features
    categorical: int  # string features
    label_share: float  # share of predictions that later get a label


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str  # "service" or "pipeline"
    model: str


@dataclass(frozen=True)
class Incident:
    """Something going wrong from ``at`` (an event index) on. ``what``: drift, latency, confidence,
    accuracy (needs labels), cpu (a service) or stale (a pipeline); ``feature`` for a drift."""

    what: str
    entity: str
    at: int
    feature: str | None = None

    @property
    def kind(self) -> str:
        return {"drift": "feature_drift", "latency": "latency_spike", "confidence": "confidence_drop",
                "accuracy": "performance_drift", "cpu": "infra_anomaly", "stale": "pipeline_stale"}[self.what]


# Numeric feature counts and tasks per model. Names go round-robin over the partitions, so with 4 partitions
# models i and i+4 share one: each such pair has 60 numeric features and exactly one labelled model.
_FEATURES = (12, 48, 25, 35, 48, 12, 35, 25)
_TASKS = ("binary", "multiclass", "binary", "regression", "regression", "binary", "multiclass", "binary")


def fleet(models: int = 8, services: int = 6, pipelines: int = 2, partitions: int = 4
          ) -> tuple[list[ModelSpec], list[SourceSpec]]:
    names = balanced_names(_MODEL_NAMES, models, partitions, "-model")
    specs = []
    for i, name in enumerate(names):
        task = _TASKS[i % len(_TASKS)]
        specs.append(ModelSpec(name, str(3 + i % 5), task, _FEATURES[i % len(_FEATURES)], 2,
                               0.3 if task == "binary" else 0.0))
    load: Counter[int] = Counter()
    pipeline_names = balanced_names(_PIPELINE_NAMES, pipelines, partitions, load=load)
    service_names = balanced_names(_SERVICE_NAMES, services, partitions, load=load)
    sources = [SourceSpec(n, "service", names[i % len(names)]) for i, n in enumerate(service_names)]
    sources += [SourceSpec(n, "pipeline", names[i % len(names)]) for i, n in enumerate(pipeline_names)]
    return specs, sources


def standard_incidents(models: list[ModelSpec], sources: list[SourceSpec], onset: int) -> list[Incident]:
    """One incident of each kind the demo injects, all starting at event ``onset``."""
    binary = [m for m in models if m.task == "binary"]
    others = [m for m in models if m.task != "binary"]
    services = [s for s in sources if s.kind == "service"]
    pipelines = [s for s in sources if s.kind == "pipeline"]
    return [
        Incident("drift", others[0].name, onset, "f3"),
        Incident("accuracy", binary[0].name, onset),
        Incident("latency", others[1 % len(others)].name, onset),
        Incident("confidence", binary[1 % len(binary)].name, onset),
        Incident("cpu", services[0].name, onset),
        Incident("stale", pipelines[0].name, onset),
    ]


class Workload:
    """Yields ``(topic, key, event)``. Each step emits one prediction of a model picked uniformly, the labels
    that have come due, and with probability ``infra_share`` one infrastructure reading. The clock is read
    per event, so a paced producer stamps each event with its produce time."""

    def __init__(self, models: list[ModelSpec], sources: list[SourceSpec], incidents: list[Incident] = (),  # type: ignore[assignment]
                 infra_share: float = 0.1, seed: int = 11, clock: Callable[[], float] | None = None) -> None:
        import time

        self.models = models
        self.sources = sources
        self.incidents = list(incidents)
        self.infra_share = infra_share
        self.seed = seed
        self.clock = clock or time.time

    def __iter__(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        rng = random.Random(self.seed)
        noise = np.random.default_rng(self.seed)
        gauss, rand, clock = rng.gauss, rng.random, self.clock
        # Per model: numeric feature names, means and spreads; categorical vocabularies; a buffer of rows.
        layout = []
        for m in self.models:
            names = [f"f{j}" for j in range(m.numeric)]
            means = np.array([rng.uniform(-50, 150) for _ in names])
            stds = np.array([rng.uniform(0.5, 20) for _ in names])
            categorical = [(f"c{j}", [f"v{k}" for k in range(3 + j * 2)]) for j in range(m.categorical)]
            layout.append([m, names, means, stds, categorical, [], 0])
        metric_count = len(_METRICS)
        pending: list[tuple[int, int, str, dict[str, Any]]] = []  # heap of labels by arrival index
        active: dict[tuple[str, str], Incident] = {}
        drifted: dict[str, list[tuple[int, float]]] = {}  # model -> (feature index, shift)
        schedule = sorted(self.incidents, key=lambda x: x.at)
        next_incident = 0
        source_step = [0] * len(self.sources)
        i = 0
        while True:
            while next_incident < len(schedule) and schedule[next_incident].at <= i:
                inc = schedule[next_incident]
                active[(inc.entity, inc.what + (inc.feature or ""))] = inc
                next_incident += 1
                if inc.what == "drift" and inc.feature is not None:
                    spec = next(entry for entry in layout if entry[0].name == inc.entity)
                    j = spec[1].index(inc.feature)
                    drifted.setdefault(inc.entity, []).append((j, 3.0 * float(spec[3][j])))
            entry = layout[int(rand() * len(layout))]
            m, names, means, stds, categorical, rows, _ = entry
            if not rows:
                block = np.round(means + stds * noise.standard_normal((512, len(names))), 3)
                rows.extend(reversed(block.tolist()))
            values = rows.pop()
            name = m.name
            for j, shift in drifted.get(name, ()):
                values[j] = round(values[j] + shift, 3)
            features: dict[str, Any] = dict(zip(names, values))
            for fname, vocab in categorical:
                features[fname] = vocab[int(rand() ** 2 * len(vocab))]
            confidence = gauss(0.55 if (name, "confidence") in active else 0.86, 0.05)
            latency = gauss(240, 30) if (name, "latency") in active else gauss(40, 6)
            event: dict[str, Any] = {
                "type": "prediction", "request_id": f"{name}-{i}", "model": name, "version": m.version,
                "timestamp": clock(), "features": features,
                "confidence": round(min(max(confidence, 0.0), 1.0), 4), "latency_ms": round(max(latency, 0.1), 2),
            }
            if m.task == "binary":
                truth = int(rand() < 0.2)
                error_rate = 0.35 if (name, "accuracy") in active else 0.05
                event["prediction"] = truth if rand() > error_rate else 1 - truth
                if rand() < m.label_share:
                    delay = 200 + int(rand() * 1800)  # labels land 200-2000 events later, out of order
                    heapq.heappush(pending, (i + delay, i, name, {
                        "type": "label", "request_id": event["request_id"], "model": name, "label": truth}))
            elif m.task == "multiclass":
                event["prediction"] = ("billing", "shipping", "returns", "other")[int(rand() ** 1.5 * 4)]
            else:
                event["prediction"] = round(gauss(100, 15), 3)
            yield PREDICTIONS, name, event
            while pending and pending[0][0] <= i:
                _, _, model, label = heapq.heappop(pending)
                label["timestamp"] = clock()
                yield PREDICTIONS, model, label
            if self.sources and rand() < self.infra_share:
                s_index = int(rand() * len(self.sources))
                source = self.sources[s_index]
                step = source_step[s_index]
                source_step[s_index] += 1
                if source.kind == "pipeline":
                    stale = active.get((source.name, "stale"))
                    age = 300 + 3 * (i - stale.at) / 100 if stale else gauss(30, 8)
                    yield INFRASTRUCTURE, source.name, {
                        "type": "infra", "source": source.name, "source_kind": "pipeline",
                        "metric": "freshness_seconds", "value": round(max(age, 1.0), 2), "unit": "s",
                        "timestamp": clock(), "model": source.model,
                    }
                else:
                    metric, mean, std, unit = _METRICS[step % metric_count]
                    if metric == "cpu_utilisation" and (source.name, "cpu") in active:
                        mean, std = 97.0, 1.5
                    yield INFRASTRUCTURE, source.name, {
                        "type": "infra", "source": source.name, "source_kind": "service", "metric": metric,
                        "value": round(max(gauss(mean, std), 0.0), 4), "unit": unit, "timestamp": clock(),
                        "model": source.model,
                    }
            i += 1
