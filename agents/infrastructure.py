"""Consumes infrastructure metrics; feeds the per-source anomaly and freshness monitors."""

from __future__ import annotations

from agents.intake import process_batch
from app.faust_app import app, infrastructure_inputs, settings
from models.fleet import ServiceFleet
from models.schema import InfraEvent

fleet = ServiceFleet(settings.monitor)


@app.agent(infrastructure_inputs)
async def watch_infrastructure(stream):  # type: ignore[no-untyped-def]
    async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        await process_batch(events, InfraEvent.from_dict, fleet.observe)
