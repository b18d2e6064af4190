"""A burst of 10x the sustained rate, spread over many more models than the worker may monitor: memory stays
bounded and the backlog drains.

The worker runs with small caps (``max_keys`` monitored model versions and label joins, ``pending_max``
predictions waiting for a label per model). While the traffic runs, ``/metrics`` is scraped and the worker's
resident memory read from /proc: the monitored keys and pending labels never pass their caps, the evictions
that keep them there are counted, and the worker's peak RSS stays under a stated bound. Afterwards the
consumer group catches up with every input partition, and every event is accounted for: each was consumed,
none dead-lettered, and the hot models (never evicted) counted each of their predictions exactly once.

No assertion is about speed: on a loaded machine the burst only takes longer to produce and to drain."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from models import codec
from tests.brokers import worker_env
from tests.integration.kafka_io import wait_consumed

MAX_KEYS = 40  # monitored model versions, and label joins (models), held at once
PENDING_MAX = 200  # predictions waiting for their label, per model
SUSTAINED_RATE, SUSTAINED_S = 100, 10  # events/s, seconds
BURST_FACTOR, BURST_S = 10, 10
HOT_MODELS = 10  # carry most of the traffic; few enough to stay monitored through the burst
TAIL_MODELS = 100 * MAX_KEYS  # the burst's long tail: each seen once or twice, and evicted again
FEATURES = 8
CHECKPOINT_INTERVAL_S = 20
CHECKPOINT_MAX_EVENTS = 5_000  # the burst brings 10,000: this count, not the interval, forces checkpoints
# The worker's peak resident memory (VmHWM): under the project's per-worker target, and at most this much
# above what it held before the burst. It idles at about 150 MiB; the capped burst adds about 20 MiB, the
# same burst with uncapped monitors over 100 MiB (2,700 models).
RSS_BOUND_MIB, RSS_BURST_GROWTH_MIB = 256, 64


def hot(i: int) -> str:
    return f"bp-hot-{i}"


class Traffic:
    """Predictions of the hot models (a quarter of them labelled, 150 events later) and, in the burst, of
    the tail models (never labelled: they fill the label joins)."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        self.due: list[tuple[int, dict[str, Any]]] = []
        self.hot_predictions: dict[str, int] = defaultdict(int)
        self.produced = 0

    def next(self, tail_share: float) -> dict[str, Any]:
        self.n += 1
        if self.due and self.due[0][0] <= self.n:
            return self.due.pop(0)[1]
        rng = self.rng
        model = f"bp-tail-{rng.randrange(TAIL_MODELS)}" if rng.random() < tail_share else hot(rng.randrange(HOT_MODELS))
        request_id, timestamp = f"{model}-{self.n}", 1_700_000_000.0 + self.n * 0.001
        event = {"type": "prediction", "request_id": request_id, "model": model, "version": "1", "timestamp": timestamp,
                 "features": {f"f{j}": round(rng.gauss(10 * j, 1 + j), 3) for j in range(FEATURES)},
                 "prediction": rng.randrange(2), "confidence": round(rng.uniform(0.6, 1.0), 3), "latency_ms": 20.0}
        if model.startswith("bp-hot-"):
            self.hot_predictions[model] += 1
            if rng.random() < 0.25:
                self.due.append((self.n + 150, {"type": "label", "request_id": request_id, "model": model,
                                                "timestamp": timestamp + 1, "label": rng.randrange(2)}))
        return event


async def paced(settings: Settings, traffic: Traffic, rate: int, seconds: float, tail_share: float) -> float:
    """Send ``rate`` events a second for ``seconds`` (in 0.1 s ticks); returns how long it really took."""
    producer = AIOKafkaProducer(linger_ms=20, **settings.kafka_client_options())
    await producer.start()
    started = time.monotonic()
    try:
        per_tick = rate // 10
        for tick in range(int(seconds * 10)):
            for _ in range(per_tick):
                event = traffic.next(tail_share)
                await producer.send(settings.topics.predictions, codec.dumps(event), key=event["model"].encode())
                traffic.produced += 1
            await asyncio.sleep(max(0.0, started + (tick + 1) / 10 - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - started


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def model_state(port: int, model: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models?model={model}&series=false",
                                timeout=10) as response:
        (found,) = json.load(response)["models"]
        return found["state"]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Watch(threading.Thread):
    """Scrapes ``/metrics`` and reads VmRSS every 0.5 s, keeping the highest value of each gauge."""

    GAUGES = ("emlops_monitored_keys", "emlops_pending_labels", "emlops_unacked_events", "emlops_consumer_lag")

    def __init__(self, port: int, pid: int) -> None:
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.peaks: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.rss_kib: list[int] = []
        self.scrapes = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:
                self.rss_kib.append(status_kib(self.pid, "VmRSS"))
                metrics = scrape(self.port)
            except (OSError, ValueError, AssertionError):
                continue  # the web server is busy: the next scrape will do
            self.scrapes += 1
            for key, value in metrics.items():
                if key[0] in self.GAUGES:
                    self.peaks[key] = max(self.peaks[key], value)

    def peak(self, name: str, **labels: str) -> float:
        return self.peaks.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(name="worker_env")
def burst_worker_env(bootstrap: str, tmp_path: Path) -> dict[str, str]:
    return worker_env(
        bootstrap, "burst", tmp_path / "data",
        EMLOPS_MONITOR_MAX_KEYS=str(MAX_KEYS), EMLOPS_MONITOR_PENDING_MAX=str(PENDING_MAX),
        # Longer than the burst: what bounds the events a crash would read again is their count.
        EMLOPS_CHECKPOINT_INTERVAL_S=str(CHECKPOINT_INTERVAL_S),
        EMLOPS_CHECKPOINT_MAX_EVENTS=str(CHECKPOINT_MAX_EVENTS),
        EMLOPS_GROUP_INTERVAL_S="3600", EMLOPS_RESOLVE_AFTER_S="3600",
    )


def test_a_10x_burst_over_many_keys_stays_within_the_caps_and_drains(worker_env: dict[str, str],
                                                                     tmp_path: Path) -> None:
    settings = Settings.from_env(worker_env)
    port = int(worker_env["EMLOPS_WEB_PORT"])
    traffic = Traffic()
    asyncio.run(ensure_topics(settings))
    with WorkerProcess(worker_env, tmp_path / "worker.log") as worker:
        pid = worker._process.pid  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while True:
            assert worker.exit_code is None, worker.log_tail()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"the worker was not ready within 60 s\n{worker.log_tail()}"
                time.sleep(0.5)
        watch = Watch(port, pid)
        watch.start()
        try:
            sustained = asyncio.run(paced(settings, traffic, SUSTAINED_RATE, SUSTAINED_S, tail_share=0.0))
            asyncio.run(wait_consumed(settings, [settings.topics.predictions], timeout=60))
            before_burst = {m: model_state(port, m)["predictions"] for m in traffic.hot_predictions}
            hot_before = dict(traffic.hot_predictions)
            rss_before = status_kib(pid, "VmRSS")
            burst = asyncio.run(paced(settings, traffic, SUSTAINED_RATE * BURST_FACTOR, BURST_S, tail_share=0.5))
            burst_over = time.monotonic()
            asyncio.run(wait_consumed(settings, [settings.topics.predictions], timeout=120))
            drained = time.monotonic() - burst_over
            time.sleep(1.5)  # one more scrape after the last checkpoint
        finally:
            watch.done.set()
            watch.join()
        after = scrape(port)
        peak_kib = status_kib(pid, "VmHWM")
        assert worker.exit_code is None, worker.log_tail()

    print(f"\nproduced {traffic.produced} events: sustained {SUSTAINED_RATE}/s in {sustained:.1f} s, burst "
          f"{SUSTAINED_RATE * BURST_FACTOR}/s in {burst:.1f} s; lag drained {drained:.1f} s later; "
          f"RSS before the burst {rss_before / 1024:.0f} MiB, peak {peak_kib / 1024:.0f} MiB "
          f"(sampled max {max(watch.rss_kib, default=0) / 1024:.0f} MiB); {watch.scrapes} scrapes; peaks "
          + ", ".join(f"{k[0]}{dict(k[1])}={v:.0f}" for k, v in sorted(watch.peaks.items())))

    assert watch.scrapes >= 10, "/metrics hardly answered while the traffic ran"
    # Capped: never more monitors or joins than max_keys, never more pending labels than they may hold.
    for fleet in ("models", "label_joins"):
        assert 0 < watch.peak("emlops_monitored_keys", fleet=fleet) <= MAX_KEYS, fleet
        assert sample(after, "emlops_monitored_keys", fleet=fleet) <= MAX_KEYS
    assert PENDING_MAX <= watch.peak("emlops_pending_labels") <= MAX_KEYS * PENDING_MAX
    # Unsaved: events processed since the last checkpoint stay under the count that forces one (plus the
    # batch that reached it), although the interval is longer than the burst.
    assert 0 < watch.peak("emlops_unacked_events", agent="predictions") < CHECKPOINT_MAX_EVENTS + settings.batch_size
    # Counted: the tail pushed the least recently used monitors and joins out, and said so.
    for fleet in ("models", "label_joins"):
        assert sample(after, "emlops_monitor_evictions_total", fleet=fleet) >= TAIL_MODELS / 2 - MAX_KEYS, fleet
    # Bounded: the worker's resident memory, whatever the number of distinct models.
    assert peak_kib / 1024 <= RSS_BOUND_MIB
    assert (peak_kib - rss_before) / 1024 <= RSS_BURST_GROWTH_MIB
    # Drained: nothing left behind on any input partition, and every event accounted for.
    assert all(v == 0 for k, v in after.items() if k[0] == "emlops_consumer_lag"), after
    consumed = sample(after, "emlops_events_consumed_total", topic=settings.topics.predictions)
    dead = sample(after, "emlops_dead_lettered_total", topic=settings.topics.predictions)
    assert (consumed, dead) == (traffic.produced, 0)
    assert sample(after, "emlops_decode_failures_total", topic=settings.topics.predictions) == 0
    # Before the burst no model was evicted: each counted every one of its predictions exactly once.
    assert before_burst == hot_before
