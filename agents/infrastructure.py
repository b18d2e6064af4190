"""Infrastructure metrics feed the per-source anomaly and freshness monitors (read by the intake)."""

from __future__ import annotations

from agents.checkpoints import Checkpointed
from agents.intake import intake
from app.faust_app import settings
from app.topics import SOURCE_FLEET
from models.fleet import ServiceFleet
from models.schema import InfraEvent

fleet = ServiceFleet(settings.monitor)
watcher = Checkpointed(fleet, lambda event: event.source, max_keys=settings.monitor.max_keys)
intake.add(SOURCE_FLEET, [settings.topics.infrastructure, *settings.extra_inputs("infrastructure")],
           InfraEvent.from_dict, watcher)
