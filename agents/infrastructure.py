"""Consumes infrastructure metrics; feeds the per-source anomaly and freshness monitors."""

from __future__ import annotations

from agents.checkpoints import checkpointed
from agents.intake import process_batch
from app.faust_app import app, infrastructure_inputs, settings, source_state_table
from models.fleet import ServiceFleet
from models.schema import InfraEvent

fleet = ServiceFleet(settings.monitor)
watcher = checkpointed(fleet, source_state_table, lambda event: event.source)


@app.agent(infrastructure_inputs)
async def watch_infrastructure(stream):  # type: ignore[no-untyped-def]
    async for events in stream.noack_take(settings.batch_size, within=settings.batch_within_s):
        await process_batch(stream, events, InfraEvent.from_dict, watcher)
