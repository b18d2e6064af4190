"""The published JSON Schemas and the decoders agree: what producers validate against is what we accept."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from app.traffic import Traffic
from models.routing import load_rules, route
from models.schema import Detection, DetectionKind, InfraEvent, InvalidEvent, Severity, decode_prediction_topic

SCHEMAS = {name: json.loads(resources.files("models").joinpath(f"schemas/{name}.json").read_text())
           for name in ("prediction", "label", "infra", "detection", "ticket")}
REGISTRY = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name], registry=REGISTRY)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_itself_valid(name: str) -> None:
    Draft202012Validator.check_schema(SCHEMAS[name])


def test_every_demo_event_validates_and_decodes() -> None:
    counts = {"prediction": 0, "label": 0, "infra": 0}
    for _, _, event in Traffic(steps=300, clock=lambda: 1_700_000_000.0):
        kind = event["type"]
        validator(kind).validate(event)
        decoded = InfraEvent.from_dict(event) if kind == "infra" else decode_prediction_topic(event)
        assert decoded.type == kind
        counts[kind] += 1
    assert min(counts.values()) > 0


REJECTED_BY_BOTH: list[tuple[str, dict[str, Any]]] = [
    ("prediction", {"request_id": "r", "model": "m", "version": "1", "timestamp": 1, "features": {}}),
    ("prediction", {"request_id": "r", "model": "m", "version": "1", "timestamp": 1, "features": {},
                    "prediction": 1, "confidence": 1.5}),
    ("prediction", {"request_id": "", "model": "m", "version": "1", "timestamp": 1, "features": {}, "prediction": 1}),
    ("prediction", {"request_id": "r", "model": "m", "version": "1", "timestamp": 1, "features": {"a": [1]},
                    "prediction": 1}),
    ("label", {"type": "label", "request_id": "r", "model": "m", "timestamp": 1}),
    ("label", {"type": "label", "request_id": "r", "model": "m", "timestamp": 1, "feedback": 2}),
    ("infra", {"source": "s", "metric": "cpu", "value": "high", "timestamp": 1}),
    ("infra", {"source": "s", "metric": "cpu", "value": 1, "timestamp": 1, "source_kind": "cluster"}),
]


@pytest.mark.parametrize("name,event", REJECTED_BY_BOTH)
def test_schema_and_decoder_reject_the_same_bad_events(name: str, event: dict[str, Any]) -> None:
    assert not validator(name).is_valid(event)
    with pytest.raises(InvalidEvent):
        InfraEvent.from_dict(event) if name == "infra" else decode_prediction_topic(event)


def test_published_tickets_validate_against_the_ticket_schema() -> None:
    rules = load_rules()
    detection = Detection(DetectionKind.FEATURE_DRIFT, {"model": "m", "version": "1", "feature": "x"}, 0.7,
                          Severity.CRITICAL, 10.0, "adwin_mean_shift", {"effect_size": 3.0}, "x drifted")
    state, opened = route(detection, None, rules, now=100.0)
    later = replace(detection, event_time=20.0)
    _, updated = route(later, state, rules, now=100.0 + rules.group_interval_s)
    for ticket in (opened, updated):
        assert ticket is not None
        validator("ticket").validate(json.loads(json.dumps(ticket.to_dict())))
