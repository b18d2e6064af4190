"""Two workers in one group: the second starts mid-stream, then the first stops, while the events keep
flowing. Partitions move twice and their monitor state moves with them, so the tickets are exactly those one worker — or an offline run of
the same monitors over the same events — produces: same detections, at the same events, once each."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.broker import free_port
from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from models.fleet import ModelFleet
from models.schema import decode_prediction_topic
from tests.brokers import worker_env
from tests.integration.kafka_io import produce, read_until, tickets, wait_consumed, wait_members

MODELS = [f"rebalance-model-{i}" for i in range(6)]
EVENTS_PER_MODEL = 2000
DRIFT_AT = 1500
T0 = 1_700_000_000.0
CHUNK, PACE_S = 60, 0.2  # 12,000 events over about 50 s: both hand-overs happen while they flow


def stream(model: str) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(model)
    return [(model, {"type": "prediction", "request_id": f"{model}-{i}", "model": model, "version": "1",
                     "timestamp": T0 + i, "prediction": 1, "confidence": 0.9,
                     "features": {"x": rng.gauss(0, 1) + (3.0 if i >= DRIFT_AT else 0.0), "y": rng.gauss(5, 1)}})
            for i in range(EVENTS_PER_MODEL)]


Found = list[tuple[str, str, float]]  # kind, feature (or ""), event time


def offline(events: dict[str, list[tuple[str, dict[str, Any]]]]) -> dict[str, Found]:
    """What the same monitors find over the same events in one process: the reference result."""
    fleet = ModelFleet()
    return {model: [(d.kind.value, d.entity.get("feature", ""), d.event_time)
                    for _, event in model_events for d in fleet.observe(decode_prediction_topic(event))]
            for model, model_events in events.items()}


async def paced(settings: Settings, events: list[tuple[str, dict[str, Any]]]) -> None:
    """The events in chunks, one every PACE_S, in order."""
    for start in range(0, len(events), CHUNK):
        await produce(settings, settings.topics.predictions, events[start:start + CHUNK])
        await asyncio.sleep(PACE_S)


def counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models?series=false", timeout=10) as response:
        return {m["model"]: m["state"]["predictions"] for m in json.load(response)["models"]}


def test_state_moves_with_partitions_when_a_worker_joins_and_another_leaves(bootstrap: str, tmp_path: Path) -> None:
    # Repeats are published within a second, so the last revision carries every detection.
    env_a = worker_env(bootstrap, "rebalance", tmp_path / "a", EMLOPS_CHECKPOINT_INTERVAL_S="1",
                       EMLOPS_GROUP_INTERVAL_S="1", EMLOPS_TICK_INTERVAL_S="1", EMLOPS_RESOLVE_AFTER_S="3600")
    env_b = {**env_a, "EMLOPS_WEB_PORT": str(free_port()), "EMLOPS_DATA_DIR": str(tmp_path / "b")}  # same app
    settings = Settings.from_env(env_a)
    events = {m: stream(m) for m in MODELS}
    expected = offline(events)
    assert all(("feature_drift", "x") in {(k, f) for k, f, _ in expected[m]} for m in MODELS), expected

    def part(lo: int, hi: int) -> list[tuple[str, dict[str, Any]]]:
        return [e for m in MODELS for e in events[m][lo:hi]]

    topics = [settings.topics.predictions]
    asyncio.run(ensure_topics(settings))
    flowing = threading.Thread(target=lambda: asyncio.run(paced(settings, part(0, EVENTS_PER_MODEL))))
    worker_a = WorkerProcess(env_a, tmp_path / "a.log").start()
    worker_b = WorkerProcess(env_b, tmp_path / "b.log")
    try:
        worker_a.wait_ready()
        flowing.start()  # the stream keeps flowing through both hand-overs
        time.sleep(PACE_S * 20)
        worker_b.start()  # joins mid-stream: the group rebalances and B takes some partitions from A
        asyncio.run(wait_members(settings, 2))
        worker_b.wait_ready()
        time.sleep(PACE_S * 20)
        worker_a.stop()  # leaves mid-stream: B takes everything
        assert worker_a.exit_code == 0, worker_a.log_tail()
        assert "released the state of" in worker_a.log_tail(10**7), "nothing moved from A to B"
        assert flowing.is_alive(), "the stream ended before the hand-overs: nothing was tested in flight"
        flowing.join()

        def complete(rs: list) -> bool:
            last = {t["labels"]["model"]: len(t["detections"]) for t in tickets(rs)}
            return all(last.get(m, 0) >= len(expected[m]) for m in MODELS)

        asyncio.run(wait_consumed(settings, topics + [settings.topics.detections], timeout=120))
        records = asyncio.run(read_until(settings, settings.topics.incidents, complete, timeout=120))
        seen = counts(int(env_b["EMLOPS_WEB_PORT"]))
        assert worker_b.exit_code is None, worker_b.log_tail()
    finally:
        worker_a.stop()
        worker_b.stop()

    for model in MODELS:
        ours = [t for t in tickets(records) if t["labels"]["model"] == model]
        assert [t["status"] for t in ours].count("triggered") == 1, (model, [t["update_reason"] for t in ours])
        online = [(d["kind"], d["entity"].get("feature", ""), d["event_time"]) for d in ours[-1]["detections"]]
        assert online == expected[model], (model, online, expected[model])
        assert seen[model] == EVENTS_PER_MODEL, (model, seen)


@pytest.fixture(autouse=True)
def _spread() -> None:
    """The models must spread over several partitions, or nothing would move."""
    from aiokafka.partitioner import DefaultPartitioner

    partitions = {DefaultPartitioner()(m.encode(), list(range(4)), list(range(4))) for m in MODELS}
    assert len(partitions) >= 3, partitions
