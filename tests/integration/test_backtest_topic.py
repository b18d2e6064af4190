"""``emlops backtest --topic``: a topic's range through the monitors, on the real broker."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app import backtest
from app.settings import Settings
from tests.integration.kafka_io import produce


def events(model: str, n: int = 4000, drift_at: int = 2000):
    rng = random.Random(5)
    for i in range(n):
        x = rng.gauss(5.0 if i < drift_at else 7.0, 1.0)
        yield model, {"type": "prediction", "request_id": f"r{i}", "model": model, "version": "1",
                      "timestamp": 1_700_000_000 + i, "features": {"spend": x}, "prediction": 1}


async def make_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()


def test_a_topic_range_is_replayed_with_partitions_and_offsets(bootstrap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    topic = f"backtest-{uuid.uuid4().hex[:8]}"
    asyncio.run(make_topic(bootstrap, topic))
    settings = Settings.from_env()
    asyncio.run(produce(settings, topic, events("churn")))
    out = tmp_path / "found.jsonl"
    assert backtest.main(["--topic", topic, "--output", str(out), "--quiet"]) == 0
    found = [json.loads(line) for line in out.read_text().splitlines()]
    # One key, so one partition, in order: the drift at the 2,000th message is found shortly after it.
    assert [(d["kind"], d["entity"]["feature"]) for d in found] == [("feature_drift", "spend")]
    assert 2000 <= found[0]["offset"] < 2100 and found[0]["partition"] in (0, 1)
    assert "4000 events, 1 detections, 0 invalid" in capsys.readouterr().err

    # Only the first 1,000 offsets of each partition: before the drift, nothing to report.
    assert backtest.main(["--topic", topic, "--to-offset", "999", "--output", str(out), "--quiet"]) == 0
    assert out.read_text() == ""
    assert "1000 events, 0 detections" in capsys.readouterr().err


def test_an_unknown_topic_is_an_error(bootstrap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    assert backtest.main(["--topic", f"missing-{uuid.uuid4().hex[:8]}", "-o", str(tmp_path / "o"), "--quiet"]) == 1
    assert "does not exist" in capsys.readouterr().err
