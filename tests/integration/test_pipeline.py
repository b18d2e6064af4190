"""Events produced to the real broker come out of a real worker as tickets on the incidents topic,
and malformed input is dead-lettered with its reason instead of stopping an agent."""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from typing import Any

from app.settings import Settings
from tests.integration.kafka_io import produce, read_until, tickets


def _prediction(model: str, i: int, x: float, rng: random.Random) -> dict[str, Any]:
    return {
        "type": "prediction", "request_id": f"{model}-{i}", "model": model, "version": "1",
        "timestamp": time.time(), "features": {"x": round(x, 4), "y": round(rng.gauss(5, 1), 4)},
        "prediction": 1, "confidence": 0.9, "latency_ms": 10.0,
    }


def _ticket_for(records: list, predicate: Any) -> dict[str, Any] | None:
    return next((t for t in tickets(records) if predicate(t)), None)


def test_feature_drift_becomes_a_data_operations_ticket_naming_model_and_feature(pipeline: Settings) -> None:
    model, rng = "it-drift-model", random.Random(11)
    events = [(model, _prediction(model, i, rng.gauss(0, 1) + (3 if i >= 1000 else 0), rng)) for i in range(1600)]

    def is_drift(t: dict[str, Any]) -> bool:
        return t["labels"].get("model") == model and "feature_drift" in t["kinds"]

    async def scenario() -> dict[str, Any] | None:
        await produce(pipeline, pipeline.topics.predictions, events)
        records = await read_until(pipeline, pipeline.topics.incidents, lambda rs: _ticket_for(rs, is_drift) is not None)
        return _ticket_for(records, is_drift)

    ticket = asyncio.run(scenario())
    assert ticket is not None
    assert ticket["labels"]["feature"].split(",") == ["x"]
    assert "Data Operations" in ticket["areas"] and ticket["primary_area"] == "Data Operations"
    assert ticket["status"] == "triggered" and ticket["revision"] == 1
    assert ticket["priority"] in ("P1", "P2", "P3", "P4")
    with urllib.request.urlopen(ticket["links"]["incident"], timeout=10) as response:  # the link works
        assert model in response.read().decode()
    evidence = ticket["detections"][0]["evidence"]
    assert evidence["before_mean"] < 0.5 and evidence["after_mean"] > 1.0


def test_infrastructure_anomaly_becomes_a_technical_operations_ticket(pipeline: Settings) -> None:
    source, rng = "it-api", random.Random(5)
    metrics = (("cpu", 40.0, 4.0), ("memory", 60.0, 2.0), ("errors", 0.01, 0.002))

    def reading(i: int) -> tuple[str, dict[str, Any]]:
        name, mean, std = metrics[i % len(metrics)]
        value = rng.gauss(97.0, 1.0) if name == "cpu" and i >= 1500 else rng.gauss(mean, std)
        return source, {"type": "infra", "source": source, "metric": name, "value": value, "timestamp": time.time()}

    def is_anomaly(t: dict[str, Any]) -> bool:
        return t["labels"].get("source") == source and "infra_anomaly" in t["kinds"]

    async def scenario() -> dict[str, Any] | None:
        await produce(pipeline, pipeline.topics.infrastructure, (reading(i) for i in range(1800)))
        records = await read_until(pipeline, pipeline.topics.incidents,
                                   lambda rs: _ticket_for(rs, is_anomaly) is not None)
        return _ticket_for(records, is_anomaly)

    ticket = asyncio.run(scenario())
    assert ticket is not None
    assert ticket["areas"] == ["Technical Operations"]
    assert ticket["labels"]["metric"] == "cpu"
    assert ticket["detections"][0]["evidence"]["z"] > 4


BAD_INPUT = [
    (b"not json at all", "not valid JSON"),
    (b'{"type": "prediction", "request_id": "r1", "model": "m", "version": "1", "timestamp": "yesterday",'
     b' "features": {}, "prediction": 1}', "field 'timestamp'"),
    (b'{"type": "prediction", "model": "m", "version": "1", "timestamp": 1, "features": {}, "prediction": 1}',
     "missing required field 'request_id'"),
    (b'{"type": "prediction", "request_id": "r2", "model": "m", "version": "1", "timestamp": 1,'
     b' "features": [1, 2], "prediction": 1}', "field 'features' must be an object"),
    (b'[1, 2, 3]', "must be a JSON object"),
]


def test_malformed_events_are_dead_lettered_with_reason_and_origin(pipeline: Settings) -> None:
    model = "it-bad-input"

    async def scenario() -> list:
        await produce(pipeline, pipeline.topics.predictions, [(model, raw) for raw, _ in BAD_INPUT])
        await produce(pipeline, pipeline.topics.infrastructure, [("it-bad-source", b'{"type": "infra"}')])

        def ours(r: Any) -> bool:
            return r.key in (model.encode(), b"it-bad-source")

        return [r for r in await read_until(pipeline, pipeline.topics.dead_letter,
                                            lambda rs: sum(map(ours, rs)) >= len(BAD_INPUT) + 1) if ours(r)]

    dead = asyncio.run(scenario())
    by_value = {r.value: dict(r.headers) for r in dead}
    for raw, reason in BAD_INPUT:
        headers = by_value[raw]
        assert reason in headers["emlops.reason"].decode()
        assert headers["emlops.origin.topic"].decode() == pipeline.topics.predictions
        assert int(headers["emlops.origin.offset"]) >= 0
    infra = by_value[b'{"type": "infra"}']
    assert infra["emlops.reason"].decode() == "missing required field 'source'"
    assert infra["emlops.origin.topic"].decode() == pipeline.topics.infrastructure


def test_an_agent_goes_on_after_garbage_on_the_same_partition(pipeline: Settings) -> None:
    model, rng = "it-after-garbage", random.Random(3)
    events = [(model, _prediction(model, i, rng.gauss(0, 1) + (4 if i >= 800 else 0), rng)) for i in range(1300)]

    async def scenario() -> bool:
        await produce(pipeline, pipeline.topics.predictions, [(model, b"\xff garbage")] + events)
        records = await read_until(pipeline, pipeline.topics.incidents, lambda rs: any(
            t["labels"].get("model") == model for t in tickets(rs)))
        return any(t["labels"].get("model") == model for t in tickets(records))

    assert asyncio.run(scenario())
