"""The worker's batched path detects exactly what event-at-a-time processing detects on the same input.

The worker decodes and observes events in batches, checkpoints, and acknowledges later; `emlops backtest`
feeds the same monitors one event at a time from a file. Run on the demo traffic (six injected incidents
over four models and two sources), both must find the same detections, with the same evidence, and open
tickets under the same dedup keys with the same experience areas."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import orjson

from app import backtest
from app.settings import Settings
from app.topics import ensure_topics
from app.traffic import INFRASTRUCTURE, PREDICTIONS, Traffic
from app.worker_process import WorkerProcess
from tests.brokers import worker_env
from tests.integration.kafka_io import produce, read_until, tickets, wait_consumed


def demo_events() -> list[tuple[str, str, dict]]:
    clock = iter(1_700_000_000.0 + 0.01 * i for i in range(10**6))
    return list(Traffic(clock=lambda: next(clock)))


def comparable(detection: dict) -> str:
    """A detection without where it was read from: the file line offline, nothing on the topic."""
    return orjson.dumps({k: v for k, v in detection.items() if k not in ("line", "type")},
                        option=orjson.OPT_SORT_KEYS).decode()


def opened(revisions: list[dict]) -> dict[str, list[str]]:
    return {t["dedup_key"]: sorted(t["areas"]) for t in revisions if t["status"] == "triggered"}


def test_worker_and_event_at_a_time_backtest_agree(bootstrap: str, tmp_path: Path) -> None:
    events = demo_events()
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for _, _, e in events))
    assert backtest.main([str(source), "-o", str(tmp_path / "d.jsonl"), "--tickets", str(tmp_path / "t.jsonl"),
                          "--quiet"]) == 0
    offline = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    offline_tickets = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(opened(offline_tickets)) >= 6  # the six injected incidents, at least

    env = worker_env(bootstrap, "batch", tmp_path / "data", EMLOPS_GROUP_INTERVAL_S="3600",
                     EMLOPS_RESOLVE_AFTER_S="3600")
    settings = Settings.from_env(env)

    async def through_the_worker() -> tuple[list, list]:
        await ensure_topics(settings)
        for kind, topic in ((PREDICTIONS, settings.topics.predictions),
                            (INFRASTRUCTURE, settings.topics.infrastructure)):
            await produce(settings, topic, ((key, event) for k, key, event in events if k == kind))
        await wait_consumed(settings, [settings.topics.predictions, settings.topics.infrastructure], timeout=180)
        found = await read_until(settings, settings.topics.detections,
                                 lambda rs: sum(b'"detection"' in r.value for r in rs) >= len(offline), timeout=60)
        keys = set(opened(offline_tickets))
        published = await read_until(settings, settings.topics.incidents,
                                     lambda rs: keys <= set(opened(tickets(rs))), timeout=60)
        return found, published

    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        found, published = asyncio.run(through_the_worker())
        assert worker.exit_code is None, worker.log_tail()

    online = [d for d in (orjson.loads(r.value) for r in found) if d.get("type") == "detection"]
    assert Counter(map(comparable, online)) == Counter(map(comparable, offline))
    assert opened(tickets(published)) == opened(offline_tickets)
