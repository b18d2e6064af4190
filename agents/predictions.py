"""Predictions and their late labels feed the per-model monitors (read by the intake, agents/intake.py)."""

from __future__ import annotations

from agents.checkpoints import Checkpointed
from agents.intake import intake
from app.faust_app import settings
from app.topics import MODEL_FLEET
from models.fleet import ModelFleet
from models.schema import decode_prediction_topic

fleet = ModelFleet(settings.monitor, settings.model_monitors)
watcher = Checkpointed(fleet, lambda event: event.model, max_keys=settings.monitor.max_keys)
intake.add(MODEL_FLEET, [settings.topics.predictions, *settings.extra_inputs("predictions")],
           decode_prediction_topic, watcher)
