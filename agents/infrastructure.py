"""Consumes infrastructure metrics; feeds the per-source anomaly and freshness monitors."""

from __future__ import annotations

from agents.checkpoints import Checkpointed
from agents.intake import process_batch
from app.faust_app import app, infrastructure_inputs, settings, source_state_table
from models.fleet import ServiceFleet
from models.schema import InfraEvent

fleet = ServiceFleet(settings.monitor)
watcher = Checkpointed(fleet, source_state_table, lambda event: event.source, settings.checkpoint_interval_s)
app.on_partitions_revoked.connect(lambda sender, revoked, **_: watcher.revoked(revoked))
app.on_partitions_assigned.connect(lambda sender, assigned, **_: watcher.assigned(assigned))
app.on_rebalance_complete.connect(lambda sender, **_: watcher.recovered())
app.timer(interval=settings.checkpoint_interval_s)(watcher.checkpoint)


@app.agent(infrastructure_inputs)
async def watch_infrastructure(stream):  # type: ignore[no-untyped-def]
    async for events in stream.noack_take(settings.batch_size, within=settings.batch_within_s):
        await process_batch(stream, events, InfraEvent.from_dict, watcher)
