"""emlops' own JSON events on an extra topic: the same decoders as the built-in topics."""

from __future__ import annotations

from typing import ClassVar

from models.adapters.base import INFRASTRUCTURE, PREDICTIONS, Adapter, Event, RawHeaders, json_value
from models.schema import InfraEvent, decode_prediction_topic


class NativePredictionsAdapter(Adapter):
    format: ClassVar[str] = "predictions"
    target: ClassVar[str] = PREDICTIONS

    def translate(self, value: bytes | None, headers: RawHeaders = None, timestamp: float = 0.0) -> list[Event]:
        return [decode_prediction_topic(json_value(value, "event"))]


class NativeInfrastructureAdapter(Adapter):
    format: ClassVar[str] = "infrastructure"
    target: ClassVar[str] = INFRASTRUCTURE

    def translate(self, value: bytes | None, headers: RawHeaders = None, timestamp: float = 0.0) -> list[Event]:
        return [InfraEvent.from_dict(json_value(value, "event"))]
