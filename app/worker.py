"""The worker's entry module: ``faust -A app.worker worker`` (what ``emlops worker`` runs too)."""

from __future__ import annotations

import agents.infrastructure  # noqa: F401  (registers the agent)
import agents.predictions  # noqa: F401
import agents.routing  # noqa: F401
import agents.web.views  # noqa: F401  (ops views: dashboard, JSON API, /metrics, /health, /ready)
import agents.sinks.agent  # noqa: F401  (only when the configuration file has [[sinks]])
from app.faust_app import app

__all__ = ["app"]
