"""Memory of the monitors, measured in-process on ``models.fleet`` directly (no Kafka, no Faust).

Run as a child process by bench/throughput.py (``python -m bench.memory``); prints one JSON line.

- ``bytes_per_numeric_feature``: tracemalloc, the marginal cost of one more monitored numeric feature
  (mean shift + learnt range), from fleets of ``models`` models with 50 and with 1 numeric feature fed the
  same number of events, so per-model monitors and the label join cancel out.
- ``bytes_per_anomaly_model``: tracemalloc, one infrastructure source (HalfSpaceTrees, scaler, yardsticks)
  fed 5 metrics past its warm-up, averaged over ``services`` sources.
- ``bytes_per_pending_label``: tracemalloc, one prediction waiting in the label join.
- ``rss_*``: without tracemalloc, the resident memory of a process monitoring 1,000 numeric features
  (20 models x 50) and 50 services, as the issue's 256 MiB target states it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from typing import Callable

import numpy as np
import orjson

from models.config import MonitorConfig
from models.fleet import ModelFleet, ServiceFleet
from models.schema import InfraEvent, PredictionEvent

METRICS = (("cpu_utilisation", 45.0, 6.0), ("memory_utilisation", 62.0, 3.0), ("error_rate", 0.01, 0.003),
           ("p99_latency_ms", 80.0, 10.0), ("requests_per_second", 220.0, 25.0))


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def feed_models(fleet: ModelFleet, models: int, features: int, events: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    names = [f"f{j}" for j in range(features)]
    t = time.time()
    for m in range(models):
        means = rng.uniform(-50, 150, features)
        stds = rng.uniform(0.5, 20, features)
        rows = np.round(means + stds * rng.standard_normal((events, features)), 3).tolist()
        conf = np.round(0.86 + 0.05 * rng.standard_normal(events), 4).tolist()
        for i, row in enumerate(rows):
            fleet.observe(PredictionEvent(
                request_id=f"m{m}-{i}", model=f"model-{m}", version="1", timestamp=t + i * 0.01,
                features=dict(zip(names, row)), prediction=int(row[0] > means[0]),
                confidence=min(1.0, max(0.0, conf[i])), latency_ms=40.0 + (i % 7)))


def feed_services(fleet: ServiceFleet, services: int, events: int, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    t = time.time()
    for s in range(services):
        noise = rng.standard_normal(events).tolist()
        for i in range(events):
            metric, mean, std = METRICS[i % len(METRICS)]
            fleet.observe(InfraEvent(source=f"svc-{s}", metric=metric, value=max(0.0, mean + std * noise[i]),
                                     timestamp=t + i, source_kind="service"))


def traced(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated after ``build`` returned, with what it returns kept alive."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, kept


def measure(models: int, events: int, services: int, service_events: int) -> dict[str, float]:
    config = MonitorConfig()
    results: dict[str, float] = {}

    def model_fleet(features: int) -> Callable[[], object]:
        def build() -> object:
            fleet = ModelFleet(config)
            feed_models(fleet, models, features, events)
            return fleet
        return build

    started = time.perf_counter()
    wide, kept = traced(model_fleet(50))
    del kept
    narrow, kept = traced(model_fleet(1))
    del kept
    results["numeric_features"] = models * 50
    results["bytes_per_numeric_feature"] = (wide - narrow) / (models * 49)
    results["bytes_per_model_fleet_entry_gross"] = wide / models

    def service_fleet() -> object:
        fleet = ServiceFleet(config)
        feed_services(fleet, services, service_events)
        return fleet

    infra, kept = traced(service_fleet)
    del kept
    results["anomaly_models"] = services
    results["bytes_per_anomaly_model"] = infra / services

    def join() -> object:
        from models.label_join import LabelJoin
        j = LabelJoin(config.pending_max, config.pending_ttl_s)
        t = time.time()
        for i in range(20_000):
            j.remember(PredictionEvent(request_id=f"churn-model-{i}", model="churn-model", version="7",
                                       timestamp=t + i * 0.01, features={}, prediction=i & 1, confidence=0.9))
        return j

    pending, kept = traced(join)
    del kept
    results["bytes_per_pending_label"] = pending / 20_000
    results["traced_seconds"] = time.perf_counter() - started
    return results


def rss(models: int, features: int, events: int, services: int, service_events: int) -> dict[str, float]:
    """Resident memory of monitors without tracemalloc: VmRSS after feeding minus VmRSS after imports."""
    gc.collect()
    base = _status_kib("VmRSS")
    fleet, infra = ModelFleet(MonitorConfig()), ServiceFleet(MonitorConfig())
    feed_models(fleet, models, features, events)
    feed_services(infra, services, service_events)
    gc.collect()
    return {"rss_features": models * features, "rss_services": services,
            "rss_base_mib": base / 1024, "rss_mib": _status_kib("VmRSS") / 1024,
            "rss_monitors_mib": (_status_kib("VmRSS") - base) / 1024, "peak_rss_mib": _status_kib("VmHWM") / 1024}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=40, help="models of 50 numeric features (traced run)")
    parser.add_argument("--events", type=int, default=1000, help="predictions per model")
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--service-events", type=int, default=1000)
    parser.add_argument("--rss", action="store_true", help="the untraced RSS run (20 models x 50 features, 50 services)")
    args = parser.parse_args()
    if args.rss:
        out = rss(20, 50, args.events, 50, args.service_events)
    else:
        out = measure(args.models, args.events, args.services, args.service_events)
    print(orjson.dumps({**out, "pid": os.getpid()}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
