"""``emlops backtest`` on small generated files: JSONL events in, detections out; a CSV series in, one
score per row out."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

import pytest

from app import backtest, cli


def write_events(path: Path, n: int = 4000, drift_at: int = 2000) -> None:
    rng = random.Random(7)
    with open(path, "w") as f:
        for i in range(n):
            x = rng.gauss(5.0 if i < drift_at else 7.0, 1.0)
            f.write(json.dumps({"type": "prediction", "request_id": f"r{i}", "model": "churn", "version": "3",
                                "timestamp": 1_700_000_000 + i, "features": {"spend": x}, "prediction": 1}) + "\n")
            f.write(json.dumps({"type": "infra", "source": "api", "metric": "cpu", "value": rng.gauss(40, 4),
                                "timestamp": 1_700_000_000 + i}) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"type": "prediction", "model": "churn"}) + "\n")


def test_jsonl_events_become_detections(tmp_path, capsys):
    events, out = tmp_path / "events.jsonl", tmp_path / "found.jsonl"
    write_events(events)
    assert cli.main(["backtest", str(events), "--output", str(out)]) == 0
    found = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["line"], d["kind"], d["entity"]) for d in found] == [
        (4031, "feature_drift", {"model": "churn", "version": "3", "feature": "spend"})]
    assert found[0]["type"] == "detection" and found[0]["evidence"]["direction"] == "up"
    err = capsys.readouterr().err
    assert "8002 events, 1 detections, 2 invalid" in err
    assert "first invalid input: line 8001: not valid JSON" in err


def write_series(path: Path, n: int = 3000, spike_at: int = 2500) -> None:
    rng = random.Random(3)
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for i in range(n):
            value = 100.0 if spike_at <= i < spike_at + 5 else rng.gauss(10, 1)
            f.write(f"2024-01-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},{value:.4f}\n")


def test_csv_series_gets_one_score_per_row(tmp_path):
    series, out = tmp_path / "cpu.csv", tmp_path / "scored.csv"
    write_series(series)
    assert backtest.main([str(series), "--output", str(out), "--quiet"]) == 0
    with open(series) as f, open(out) as g:
        inputs, rows = list(csv.DictReader(f)), list(csv.DictReader(g))
    assert len(rows) == len(inputs) == 3000
    assert [(r["timestamp"], r["value"]) for r in rows] == [(r["timestamp"], r["value"]) for r in inputs]
    scores = [float(r["anomaly_score"]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[2500] == 1.0 and max(scores[2501:2600]) < 0.5  # one spike: one alarm-grade score


def test_progress_is_reported_on_stderr(tmp_path, capsys):
    series, out = tmp_path / "cpu.csv", tmp_path / "scored.csv"
    write_series(series, n=9000, spike_at=8000)
    backtest.run(series, out, progress_stream=sys.stderr, progress_every_s=0.0)
    err = capsys.readouterr().err
    assert "backtest: 4,096 rows" in err and "backtest: 8,192 rows" in err
    assert out.exists() and not (tmp_path / "scored.csv.partial").exists()


def test_a_csv_without_timestamp_and_value_is_refused(tmp_path, capsys):
    bad, out = tmp_path / "bad.csv", tmp_path / "out.csv"
    bad.write_text("time,reading\n1,2\n")
    assert backtest.main([str(bad), "--output", str(out), "--quiet"]) == 1
    assert "needs 'timestamp' and 'value' columns" in capsys.readouterr().err
    assert not out.exists()


def test_monitor_settings_can_be_overridden(tmp_path):
    events, out = tmp_path / "events.jsonl", tmp_path / "found.jsonl"
    write_events(events)
    # The drift is two standard deviations: a minimum effect of three hides it.
    assert backtest.main([str(events), "-o", str(out), "--set", "drift_min_effect=3", "--quiet"]) == 0
    assert out.read_text() == ""
    with pytest.raises(SystemExit):
        backtest.main([str(events), "-o", str(out), "--set", "no_such_setting=1"])
