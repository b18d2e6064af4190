"""Good and bad events mixed on the real broker: every one is accounted for, processed or dead-lettered,
and the counters on /metrics say exactly that."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.integration.kafka_io import produce, read_until, wait_consumed

MODEL = "accounting-model"
BAD = [
    b"not json",
    b"[1, 2]",
    b'{"type": "prediction", "model": "accounting-model"}',
    b'{"type": "prediction", "request_id": "r", "model": "accounting-model", "version": "1", "timestamp": 1,'
    b' "features": {"x": [1]}, "prediction": 1}',
    b'{"type": "prediction", "request_id": "r", "model": "accounting-model", "version": "1", "timestamp": 1,'
    b' "features": {}, "prediction": 1, "confidence": 7}',
    b'{"type": "label", "request_id": "r", "model": "accounting-model", "timestamp": 1}',
    b'{"schema_version": 9, "type": "prediction"}',
]


def good(i: int) -> bytes:
    return json.dumps({"type": "prediction", "request_id": f"acc-{i}", "model": MODEL, "version": "1",
                       "timestamp": 1_700_000_000 + i, "features": {"x": i % 7}, "prediction": 1}).encode()


def scrape(settings: Settings) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {f"{s.name}{{{s.labels.get('topic', '')}}}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def predictions_seen(settings: Settings) -> int:
    url = f"http://127.0.0.1:{settings.web_port}/api/v1/models?model={MODEL}&series=false"
    with urllib.request.urlopen(url, timeout=10) as response:
        return sum(m["state"]["predictions"] for m in json.load(response)["models"])


def test_every_event_is_processed_or_dead_lettered(pipeline: Settings) -> None:
    topic = pipeline.topics.predictions
    mixed: list[tuple[str, Any]] = []
    for i in range(300):
        mixed.append((MODEL, good(i)))
        if i % 40 == 5:
            mixed.append((MODEL, BAD[(i // 40) % len(BAD)]))
    bad_count = len(mixed) - 300

    async def run() -> tuple[dict[str, float], dict[str, float], list]:
        await wait_consumed(pipeline, [topic])
        before = scrape(pipeline)
        await produce(pipeline, topic, mixed)
        await wait_consumed(pipeline, [topic])
        after = scrape(pipeline)
        dead = await read_until(pipeline, pipeline.topics.dead_letter,
                                lambda rs: sum(r.key == MODEL.encode() for r in rs) >= bad_count, timeout=60)
        return before, after, [r for r in dead if r.key == MODEL.encode()]

    before, after, dead = asyncio.run(run())

    def delta(name: str) -> float:
        key = f"{name}{{{topic}}}"
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("emlops_events_consumed_total") == len(mixed)
    assert delta("emlops_dead_lettered_total") == bad_count
    assert delta("emlops_decode_failures_total") == bad_count
    assert predictions_seen(pipeline) == 300
    assert len(dead) == bad_count
    assert all(dict(r.headers)["emlops.reason"] for r in dead)
