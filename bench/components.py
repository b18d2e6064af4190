"""What each step of the hot path costs in-process, per event, on the benchmark's workload (no Kafka, no Faust).

Run as a child process by bench/throughput.py (``python -m bench.components``); prints one JSON line of
microseconds per event. The monitors are warmed up first (past every warm-up window), then timed on the next
events. The sum is the ceiling of one worker process if consuming, batching and sending cost nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from typing import Any, Callable

import orjson

from bench.workload import INFRASTRUCTURE, Workload, fleet, standard_incidents
from models import codec
from models.config import MonitorConfig
from models.fleet import ModelFleet, ServiceFleet
from models.schema import InfraEvent, decode_prediction_topic


def timed(items: list[Any], step: Callable[[Any], object], passes: int = 3) -> float:
    """CPU microseconds per item (process time, so other processes on a busy machine do not count), best of
    ``passes`` passes over the same items."""
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        for item in items:
            step(item)
        best = min(best, time.process_time() - started)
    return best / len(items) * 1e6


def measure(warmup: int, events: int) -> dict[str, Any]:
    models, sources = fleet()
    n = warmup + events
    raw = [(kind, orjson.dumps(e)) for kind, _, e in itertools.islice(
        Workload(models, sources, standard_incidents(models, sources, n)), n)]
    infra_share = sum(kind == INFRASTRUCTURE for kind, _ in raw) / n
    # The anomaly models need 500 readings per source before they score for real: a stream of infrastructure
    # readings only (every source past its warm-up, then timed), apart from the mixed stream above.
    per_source = 700
    only_infra = [(kind, orjson.dumps(e)) for kind, _, e in itertools.islice(
        Workload(models, sources, infra_share=1.0, seed=5), 2 * per_source * len(sources) * 2)
        if kind == INFRASTRUCTURE][: per_source * len(sources) + 2000]
    config = MonitorConfig()
    model_fleet, service_fleet = ModelFleet(config), ServiceFleet(config)

    def observe(kind_value: tuple[str, Any]) -> object:
        kind, value = kind_value
        return service_fleet.observe(value) if kind == INFRASTRUCTURE else model_fleet.observe(value)

    def decode(kind_raw: tuple[str, bytes]) -> tuple[str, Any]:
        kind, value = kind_raw
        d = codec.loads(value)
        return kind, (InfraEvent.from_dict(d) if kind == INFRASTRUCTURE else decode_prediction_topic(d))

    decoded = [decode(x) for x in raw]
    for item in decoded[:warmup]:
        observe(item)
    infra_decoded = [decode(x) for x in only_infra]
    for item in infra_decoded[: per_source * len(sources)]:
        observe(item)
    timed_raw, timed_decoded = raw[warmup:], decoded[warmup:]
    predictions = [x for x in timed_decoded if x[0] != INFRASTRUCTURE]
    infra = infra_decoded[per_source * len(sources):]
    out: dict[str, Any] = {"infra_share": infra_share}
    out["orjson_loads_us"] = timed([v for _, v in timed_raw], codec.loads)
    dicts = [(k, codec.loads(v)) for k, v in timed_raw]
    out["schema_decode_us"] = timed(dicts, lambda kd: InfraEvent.from_dict(kd[1]) if kd[0] == INFRASTRUCTURE
                                    else decode_prediction_topic(kd[1]))
    # Monitors learn, so each pass sees new data: time one pass only (the first three are the warm-up).
    out["model_monitors_us_per_model_event"] = timed(predictions, observe, passes=1)
    out["service_monitor_us_per_infra_event"] = timed(infra, observe, passes=1)
    out["monitors_us"] = ((1 - infra_share) * out["model_monitors_us_per_model_event"]
                          + infra_share * out["service_monitor_us_per_infra_event"])
    try:
        from agents.metrics import Metrics

        tally = Metrics().consumed
        topics = ["bench.predictions" if k != INFRASTRUCTURE else "bench.infrastructure" for k, _ in timed_raw]

        def count(topic: str) -> None:
            tally[topic] += 1

        out["metrics_tally_us"] = timed(topics, count)
    except Exception:  # noqa: BLE001 (agents.metrics may change under us; the rest still stands)
        out["metrics_tally_us"] = 0.0
    out["total_us"] = out["orjson_loads_us"] + out["schema_decode_us"] + out["monitors_us"] + out["metrics_tally_us"]
    out["events"] = events
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warmup", type=int, default=8000)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    print(orjson.dumps({**measure(args.warmup, args.events), "pid": os.getpid()}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
