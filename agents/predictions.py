"""Consumes predictions and their late labels; feeds the per-model monitors."""

from __future__ import annotations

from agents.intake import process_batch
from app.faust_app import app, prediction_inputs, settings
from models.fleet import ModelFleet
from models.schema import decode_prediction_topic

fleet = ModelFleet(settings.monitor, settings.model_monitors)


@app.agent(prediction_inputs)
async def watch_predictions(stream):  # type: ignore[no-untyped-def]
    async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        await process_batch(events, decode_prediction_topic, fleet.observe)
