"""The worker's entry module: ``faust -A app.worker worker`` (what ``emlops worker`` runs too)."""

from __future__ import annotations

import gc
import sys

import agents.infrastructure  # noqa: F401  (registers the fleet with the intake)
import agents.predictions  # noqa: F401
import agents.routing  # noqa: F401
import agents.web.views  # noqa: F401  (ops views: dashboard, JSON API, /metrics, /health, /ready)
import agents.sinks.agent  # noqa: F401  (only when the configuration file has [[sinks]])
from app.faust_app import app

# The monitors hold many small long-lived objects (ADWIN buckets, trees, windows) and make few reference
# cycles, so Python's default (a young-generation collection every 700 allocations, each re-walking the
# survivors) costs CPU for nothing: about 15-20% of the hot path in bench/components.py. What was imported
# so far is frozen out of the collections altogether.
gc.freeze()
gc.set_threshold(50_000, 20, 100)
# Faust's consumer runs in a thread of its own, and each step of handing a detection to the routing agent
# needs the GIL while the intake holds it: the thread waits out Python's switch interval (5 ms) each time.
# At 1 ms, detection -> ticket took 23-24 rather than 38-39 ms (p50, two runs each) at 5,000 events/s in
# bench/throughput.py.
sys.setswitchinterval(0.001)

__all__ = ["app"]
