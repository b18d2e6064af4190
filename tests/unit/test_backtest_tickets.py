"""`emlops backtest --tickets`: a replayed file yields the ticket revisions the current rules would have
published ("would it have fired?"), with the events' own time as the clock."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from app import backtest
from app.traffic import INCIDENTS, Traffic


def demo_file(path: Path) -> Path:
    clock = iter(1_700_000_000.0 + 0.01 * i for i in range(10**6))
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for _, _, e in Traffic(clock=lambda: next(clock))))
    return path


def revisions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_traffic_yields_one_incident_per_injected_problem_with_causes(tmp_path: Path) -> None:
    events = demo_file(tmp_path / "demo.jsonl")
    assert backtest.main([str(events), "-o", str(tmp_path / "d.jsonl"), "--tickets", str(tmp_path / "t.jsonl"),
                          "--quiet"]) == 0
    tickets = revisions(tmp_path / "t.jsonl")
    opened = [t for t in tickets if t["status"] == "triggered"]
    assert len(opened) == len({t["dedup_key"] for t in tickets}) == len(INCIDENTS)
    for injected in INCIDENTS:
        ticket = next(t for t in opened if t["dedup_key"].split("|")[0].endswith(f"={injected.entity}"))
        assert injected.kind in ticket["kinds"]
    churn = next(t for t in opened if t["dedup_key"].startswith("model=churn-model|"))
    assert [c["dedup_key"] for c in churn["caused_by"]] == ["source=feature-pipeline"]
    assert all(t["line"] > 9000 for t in tickets)  # nothing before the incidents start at the half-way point


def test_the_same_file_gives_the_same_tickets(tmp_path: Path) -> None:
    events = demo_file(tmp_path / "demo.jsonl")
    outputs = []
    for run in ("a", "b"):
        backtest.main([str(events), "-o", str(tmp_path / f"d{run}.jsonl"), "--tickets",
                       str(tmp_path / f"t{run}.jsonl"), "--quiet"])
        outputs.append((tmp_path / f"t{run}.jsonl").read_text())
    assert outputs[0] == outputs[1] and outputs[0]


def test_a_broken_rules_file_is_refused(tmp_path: Path, capsys) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rule]]\nkind = 'feature_drift'\n")
    events = demo_file(tmp_path / "demo.jsonl")
    try:
        backtest.main([str(events), "-o", str(tmp_path / "d.jsonl"), "--tickets", str(tmp_path / "t.jsonl"),
                       "--rules", str(rules)])
    except SystemExit as exc:
        assert exc.code == 2
    assert "rules.toml" in capsys.readouterr().err
