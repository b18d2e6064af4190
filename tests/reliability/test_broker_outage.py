"""Stop the broker for 30 s in the middle of a stream and start it again on the same data and ports: the
worker rides it out without a restart, says so on ``/health`` and ``/ready`` while the broker is gone,
reconnects by itself, and loses nothing: the drift that starts after the outage is found once, and the
model's monitor counted every prediction exactly once.

The test runs a broker of its own (the shared one serves other tests and must not be stopped), whatever
KAFKA_BOOTSTRAP_SERVERS says."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from app.broker import LocalBroker
from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from tests.brokers import running_broker, worker_env
from tests.integration.kafka_io import produce, read_until, tickets, wait_consumed

OUTAGE_S = 30.0  # the number: how long the broker stays down
MODEL = "outage-model"
EVENTS, DRIFT_AT, BEFORE = 2000, 1500, 1000  # predictions; the mean of x shifts at DRIFT_AT; BEFORE go first
IN_FLIGHT = 100  # produced right before the stop: read, maybe not yet checkpointed or committed


def prediction(i: int, x: float) -> tuple[str, dict[str, Any]]:
    return MODEL, {"type": "prediction", "request_id": f"o-{i}", "model": MODEL, "version": "1",
                   "timestamp": 1_700_000_000.0 + i, "features": {"x": x}, "prediction": 1, "confidence": 0.9}


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def wait_for(what: str, check: Callable[[], Any], worker: WorkerProcess, timeout: float) -> Any:
    """Poll ``check`` until it returns something truthy; the worker must stay alive all along."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert worker.exit_code is None, f"the worker exited ({worker.exit_code}):\n{worker.log_tail()}"
        try:
            last = check()
        except (OSError, ValueError) as exc:  # the web server is busy or not up yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}; last: {last!r}\n{worker.log_tail()}")


@pytest.fixture
def outage_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    with running_broker(tmp_path / "kafka") as broker:
        yield broker


def test_broker_down_30_s_worker_reconnects_and_loses_nothing(outage_broker: LocalBroker, tmp_path: Path) -> None:
    env = worker_env(outage_broker.bootstrap, "outage", tmp_path / "data", EMLOPS_CHECKPOINT_INTERVAL_S="1",
                     EMLOPS_GROUP_INTERVAL_S="3600", EMLOPS_RESOLVE_AFTER_S="3600")
    port = int(env["EMLOPS_WEB_PORT"])
    settings = Settings.from_env(env)
    rng = random.Random(5)
    events = [prediction(i, rng.gauss(0, 1) + (3.0 if i >= DRIFT_AT else 0.0)) for i in range(EVENTS)]

    async def before_outage() -> None:
        await ensure_topics(settings)
        await produce(settings, settings.topics.predictions, events[:BEFORE])
        await wait_consumed(settings, [settings.topics.predictions], timeout=90)
        await produce(settings, settings.topics.predictions, events[BEFORE:BEFORE + IN_FLIGHT])

    async def after_outage() -> list:
        await produce(settings, settings.topics.predictions, events[BEFORE + IN_FLIGHT:])
        records = await read_until(settings, settings.topics.incidents,
                                   lambda rs: any("feature_drift" in t["kinds"] for t in tickets(rs)), timeout=90)
        await wait_consumed(settings, [settings.topics.predictions, settings.topics.detections], timeout=90)
        await asyncio.sleep(2)  # anything a duplicate would have published is on the topic by now
        return await read_until(settings, settings.topics.incidents, lambda rs: len(rs) >= len(records), timeout=30)

    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        asyncio.run(before_outage())
        wait_for("/ready", lambda: get(port, "/ready")[0] == 200, worker, timeout=30)
        assert get(port, "/health")[1]["broker"]["reachable"] is True

        outage_broker.stop()
        stopped = time.monotonic()
        health = wait_for("/health to report the broker unreachable",
                          lambda: (h := get(port, "/health"))[1]["broker"]["reachable"] is False and h,
                          worker, timeout=OUTAGE_S - 5)
        assert health[0] == 200 and health[1]["status"] == "degraded", health
        ready = get(port, "/ready")
        assert ready[0] == 503 and any("unreachable" in reason for reason in ready[1]["not_ready"]), ready
        while time.monotonic() - stopped < OUTAGE_S:  # the worker stays up for the whole outage
            assert worker.exit_code is None, f"the worker exited ({worker.exit_code}):\n{worker.log_tail()}"
            try:
                assert get(port, "/health")[1]["broker"]["reachable"] is False
            except OSError:
                pass  # a slow answer on a loaded machine; the worker's exit code is what counts here
            time.sleep(1)

        outage_broker.start()
        wait_for("/health to report the broker reachable again",
                 lambda: get(port, "/health")[1]["broker"]["reachable"] is True, worker, timeout=30)
        published = asyncio.run(after_outage())
        wait_for("/ready after the outage", lambda: get(port, "/ready")[0] == 200, worker, timeout=30)
        _, answer = get(port, f"/api/v1/models?model={MODEL}&series=false")
        assert worker.exit_code is None, worker.log_tail()

    (model,) = answer["models"]
    # Exactly once into the monitor: nothing lost while the broker was away, nothing counted twice after.
    assert model["state"]["predictions"] == len(events)
    ours = [t for t in tickets(published) if t["labels"].get("model") == MODEL]
    assert [t["status"] for t in ours].count("triggered") == 1, [(t["status"], t["update_reason"]) for t in ours]
    drift = ours[0]["detections"][0]
    assert (drift["kind"], drift["entity"]["feature"]) == ("feature_drift", "x")
    assert drift["evidence"]["before_mean"] == pytest.approx(0.0, abs=0.15)
    assert drift["event_time"] >= 1_700_000_000.0 + DRIFT_AT
