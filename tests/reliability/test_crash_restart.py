"""kill -9 a worker in the middle of a stream, start it again: monitor state comes back from its checkpoint,
processing resumes from the committed offsets, and the drift that began before the crash is found after it,
once. Every event is accounted for: the model's monitor counted each prediction exactly once, and the
malformed ones are in the dead-letter topic, once per origin offset."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from tests.brokers import worker_env
from tests.integration.kafka_io import produce, read_until, tickets, wait_consumed

MODEL = "crash-model"


def prediction(i: int, x: float) -> tuple[str, dict[str, Any]]:
    return MODEL, {"type": "prediction", "request_id": f"c-{i}", "model": MODEL, "version": "1",
                   "timestamp": 1_700_000_000.0 + i, "features": {"x": x}, "prediction": 1, "confidence": 0.9}


def model_state(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models?model={MODEL}&series=false",
                                timeout=10) as response:
        (model,) = json.load(response)["models"]
        return model["state"]


def checkpoint_counts(port: int) -> dict[str, float]:
    """The model fleet's ``emlops_checkpoint_keys_total`` by event."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        families = text_string_to_metric_families(response.read().decode())
    return {s.labels["event"]: s.value for f in families for s in f.samples
            if s.name == "emlops_checkpoint_keys_total" and s.labels["fleet"] == "model"}


@pytest.fixture(name="worker_env")
def crash_worker_env(bootstrap: str, tmp_path: Path) -> dict[str, str]:
    return worker_env(bootstrap, "crash", tmp_path / "data", EMLOPS_CHECKPOINT_INTERVAL_S="1",
                      EMLOPS_GROUP_INTERVAL_S="3600", EMLOPS_RESOLVE_AFTER_S="3600")


def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(worker_env: dict[str, str], tmp_path: Path) -> None:
    settings = Settings.from_env(worker_env)
    rng = random.Random(8)
    xs = [rng.gauss(0, 1) + (3.0 if i >= 1500 else 0.0) for i in range(2000)]
    events = [prediction(i, x) for i, x in enumerate(xs)]
    bad = [(MODEL, b"{not json"), (MODEL, b'{"type": "prediction", "model": "crash-model"}')]
    log = tmp_path / "worker.log"

    async def before_crash(worker: WorkerProcess) -> None:
        await ensure_topics(settings)
        await produce(settings, settings.topics.predictions, events[:1400])
        await wait_consumed(settings, [settings.topics.predictions], timeout=90)  # checkpointed and committed
        await produce(settings, settings.topics.predictions, events[1400:1520] + bad)
        await asyncio.sleep(0.3)  # the worker is busy with these when it dies
        worker.kill()

    async def after_restart() -> list:
        await produce(settings, settings.topics.predictions, events[1520:])
        records = await read_until(settings, settings.topics.incidents,
                                   lambda rs: any("feature_drift" in t["kinds"] for t in tickets(rs)), timeout=90)
        await wait_consumed(settings, [settings.topics.predictions, settings.topics.detections], timeout=90)
        await asyncio.sleep(2)  # anything a duplicate would have published is on the topic by now
        return await read_until(settings, settings.topics.incidents, lambda rs: len(rs) >= len(records), timeout=30)

    first = WorkerProcess(worker_env, log).start()
    try:
        asyncio.run(before_crash(first))
    finally:
        first.stop()
    assert first.exit_code == -signal.SIGKILL
    with WorkerProcess(worker_env, log) as second:
        published = asyncio.run(after_restart())
        state = model_state(int(worker_env["EMLOPS_WEB_PORT"]))
        checkpoints = checkpoint_counts(int(worker_env["EMLOPS_WEB_PORT"]))
        dead = asyncio.run(read_until(settings, settings.topics.dead_letter, lambda rs: len(rs) >= len(bad), 30))
        assert second.exit_code is None, second.log_tail()

    ours = [t for t in tickets(published) if t["labels"].get("model") == MODEL]
    assert [t["status"] for t in ours].count("triggered") == 1, [(t["status"], t["update_reason"]) for t in ours]
    assert all("new signal" in t["update_reason"] for t in ours[1:]), [t["update_reason"] for t in ours]
    drift = ours[0]["detections"][0]
    assert (drift["kind"], drift["entity"]["feature"]) == ("feature_drift", "x")
    # The reference is the pre-crash regime: restored, not re-learnt from the drifted values after restart.
    assert drift["evidence"]["before_mean"] == pytest.approx(0.0, abs=0.15)
    assert drift["event_time"] >= 1_700_000_000.0 + 1500
    # Exactly once into the monitor: nothing skipped by the crash, nothing counted twice on restart.
    assert state["predictions"] == len(events)
    # The second worker restored the model from the first one's checkpoint, and said so on /metrics.
    assert checkpoints["restored"] >= 1 and checkpoints["saved"] >= 1, checkpoints
    # Dead-lettering is at-least-once: a bad event seen again after the crash is dead-lettered again, under
    # the same origin (topic, partition, offset), which is what consumers of the dead-letter topic dedupe on.
    origins = {(h["emlops.origin.partition"], h["emlops.origin.offset"]): value
               for h, value in ((dict(r.headers), r.value) for r in dead)}
    assert sorted(origins.values()) == sorted(raw for _, raw in bad)
