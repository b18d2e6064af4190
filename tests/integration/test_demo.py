"""The README's main job: `emlops demo` turns every injected incident into a ticket and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_reports_every_injected_incident_and_all_four_areas(bootstrap: str) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    run = subprocess.run([sys.executable, "-m", "app.cli", "demo"], env=env, capture_output=True, text=True,
                         timeout=240)
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
    assert "demo passed" in out
    assert "MISSED" not in out
    for area in ("Business", "Technical Operations", "Data Operations", "User"):
        line = next(l for l in out.splitlines() if l.startswith("  incidents by experience area"))
        assert f"{area} 0" not in line
    assert out.count("TRIGGERED") >= 6
