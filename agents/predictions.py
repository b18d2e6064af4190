"""Consumes predictions and their late labels; feeds the per-model monitors."""

from __future__ import annotations

from agents.checkpoints import checkpointed
from agents.intake import process_batch
from app.faust_app import app, model_state_table, prediction_inputs, settings
from models.fleet import ModelFleet
from models.schema import decode_prediction_topic

fleet = ModelFleet(settings.monitor, settings.model_monitors)
watcher = checkpointed(fleet, model_state_table, lambda event: event.model)


@app.agent(prediction_inputs)
async def watch_predictions(stream):  # type: ignore[no-untyped-def]
    async for events in stream.noack_take(settings.batch_size, within=settings.batch_within_s):
        await process_batch(stream, events, decode_prediction_topic, watcher)
