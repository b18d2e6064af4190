"""A scripted incident on the real broker: a pipeline goes stale, the model's features drift, its accuracy
decays, then everything recovers. Exactly the expected ticket revisions must come out, the drift ticket
linked to the pipeline incident, and replaying the same input must not open anything again."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from app.settings import Settings
from tests.integration.kafka_io import produce, read_until, tickets, wait_consumed

MODEL, PIPELINE = "it-scn-model", "it-scn-pipeline"
MODEL_KEY, PIPELINE_KEY = f"model={MODEL}|version=1", f"source={PIPELINE}"


def freshness(age: float) -> tuple[str, dict[str, Any]]:
    return PIPELINE, {"type": "infra", "source": PIPELINE, "source_kind": "pipeline", "metric": "freshness_seconds",
                      "value": age, "unit": "s", "timestamp": time.time(), "model": MODEL}


def predictions(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    return [(MODEL, {"type": "prediction", "request_id": f"scn-{i}", "model": MODEL, "version": "1",
                     "timestamp": time.time(), "prediction": 1, "confidence": 0.9, "latency_ms": 10.0,
                     "features": {"x": rng.gauss(0, 1) + (3 if i >= 1000 else 0), "y": rng.gauss(5, 1)}})
            for i in range(1600)]


def labels() -> list[tuple[str, dict[str, Any]]]:
    # The model keeps answering 1; after the drift the truth is 0: accuracy collapses.
    return [(MODEL, {"type": "label", "request_id": f"scn-{i}", "model": MODEL, "timestamp": time.time(),
                     "label": 1 if i < 1000 else 0}) for i in range(1600)]


def revisions(records: list, key: str) -> list[tuple[int, str, list[str]]]:
    return [(t["revision"], t["status"], t["areas"]) for t in tickets(records) if t["dedup_key"] == key]


def resolved_both(records: list) -> bool:
    done = {t["dedup_key"] for t in tickets(records) if t["status"] == "resolved"}
    return {MODEL_KEY, PIPELINE_KEY} <= done


def test_stale_pipeline_then_drift_then_decay_then_recovery(pipeline: Settings) -> None:
    rng = random.Random(21)

    async def scenario() -> tuple[list, list]:
        topics = pipeline.topics
        stale = [freshness(rng.gauss(30, 5)) for _ in range(30)] + [freshness(900.0 + 10 * i) for i in range(5)]
        await produce(pipeline, topics.infrastructure, stale)
        await read_until(pipeline, topics.incidents, lambda rs: bool(revisions(rs, PIPELINE_KEY)))
        model_events = predictions(rng) + labels()
        recovered = [freshness(rng.gauss(30, 5)) for _ in range(5)]
        await produce(pipeline, topics.predictions, model_events)
        await produce(pipeline, topics.infrastructure, recovered)
        first = await read_until(pipeline, topics.incidents, resolved_both)
        # The same input again, as after a crash that lost the consumer offsets.
        await produce(pipeline, topics.infrastructure, stale + recovered)
        await produce(pipeline, topics.predictions, model_events)
        await wait_consumed(pipeline, [topics.infrastructure, topics.predictions])
        await wait_consumed(pipeline, [topics.detections])
        again = await read_until(pipeline, topics.incidents, lambda rs: len(rs) >= len(first), timeout=30)
        return first, again

    first, again = asyncio.run(scenario())
    DO, BU, US, TO = "Data Operations", "Business", "User", "Technical Operations"
    assert revisions(first, PIPELINE_KEY) == [(1, "triggered", [DO, TO]), (2, "resolved", [DO, TO])]
    model_tickets = [t for t in tickets(first) if t["dedup_key"] == MODEL_KEY]
    statuses = [t["status"] for t in model_tickets]
    assert statuses == ["triggered"] + ["updated"] * (len(statuses) - 2) + ["resolved"]
    assert [t["revision"] for t in model_tickets] == list(range(1, len(model_tickets) + 1))
    assert len({t["incident_id"] for t in model_tickets}) == 1
    opened, final = model_tickets[0], model_tickets[-1]
    pipeline_incident = next(t for t in tickets(first) if t["dedup_key"] == PIPELINE_KEY)["incident_id"]
    assert [c["incident_id"] for c in opened["caused_by"]] == [pipeline_incident]
    assert (opened["kinds"], opened["areas"], opened["labels"]["feature"]) == (["feature_drift"], [DO, BU], "x")
    decay = next(t for t in model_tickets if "performance_drift" in t["kinds"])
    assert decay["update_reason"].startswith("new signal performance_drift")
    assert {US, TO} <= set(decay["areas"])
    # Every revision after the first was caused by a new signal, never by a plain repeat.
    assert [t["update_reason"] for t in model_tickets[1:-1] if "new signal" not in t["update_reason"]] == []
    assert final["update_reason"] == "quiet for 8s" and final["ended_at"] is not None
    assert revisions(again, MODEL_KEY) == revisions(first, MODEL_KEY)
    assert revisions(again, PIPELINE_KEY) == revisions(first, PIPELINE_KEY)
