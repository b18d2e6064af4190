"""Decoding of input events, the codec's guards, and the detection/ticket wire formats."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import pytest

from models import codec
from models.schema import (
    MAX_FEATURES,
    MAX_STRING,
    Area,
    Detection,
    DetectionKind,
    InfraEvent,
    InvalidEvent,
    LabelEvent,
    PredictionEvent,
    Severity,
    Ticket,
    TicketStatus,
    decode_prediction_topic,
)

NOON_UTC = 1714564800.0  # 2024-05-01T12:00:00Z


def prediction(**changes: Any) -> dict[str, Any]:
    event = {
        "type": "prediction", "schema_version": 1, "request_id": "req-1", "model": "churn-model", "version": "7",
        "timestamp": "2024-05-01T12:00:00Z", "features": {"tenure": 12, "spend": 59.5, "plan": "pro", "vip": True},
        "prediction": 0.42, "confidence": 0.9, "scores": {"stay": 0.58, "churn": 0.42}, "latency_ms": 17.5,
        "segment": "eu",
    }
    return _changed(event, changes)


def label(**changes: Any) -> dict[str, Any]:
    event = {"type": "label", "request_id": "req-1", "model": "churn-model", "timestamp": NOON_UTC, "label": 1}
    return _changed(event, changes)


def infra(**changes: Any) -> dict[str, Any]:
    event = {
        "type": "infra", "source": "fraud-api", "source_kind": "service", "metric": "cpu_utilisation",
        "value": 45.5, "unit": "%", "timestamp": NOON_UTC, "model": "fraud-detector", "attributes": {"zone": 3},
    }
    return _changed(event, changes)


_DROP = object()


def _changed(event: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply changes; a value of ``_DROP`` removes the field."""
    event = dict(event)
    for name, value in changes.items():
        if value is _DROP:
            event.pop(name, None)
        else:
            event[name] = value
    return event


# --- valid events ------------------------------------------------------------------------------------


def test_prediction_decodes_every_field():
    event = PredictionEvent.from_dict(prediction())
    assert event == PredictionEvent(
        request_id="req-1", model="churn-model", version="7", timestamp=NOON_UTC,
        features={"tenure": 12, "spend": 59.5, "plan": "pro", "vip": True}, prediction=0.42, confidence=0.9,
        scores={"stay": 0.58, "churn": 0.42}, latency_ms=17.5, segment="eu",
    )


@pytest.mark.parametrize(
    "timestamp, expected",
    [
        ("2024-05-01T12:00:00Z", NOON_UTC),
        ("2024-05-01T12:00:00.250Z", NOON_UTC + 0.25),
        ("2024-05-01T14:00:00+02:00", NOON_UTC),
        (NOON_UTC, NOON_UTC),
        (int(NOON_UTC), NOON_UTC),
        (0, 0.0),
    ],
)
def test_timestamps_are_iso_with_zone_or_epoch_seconds(timestamp, expected):
    assert PredictionEvent.from_dict(prediction(timestamp=timestamp)).timestamp == expected
    assert LabelEvent.from_dict(label(timestamp=timestamp)).timestamp == expected
    assert InfraEvent.from_dict(infra(timestamp=timestamp)).timestamp == expected


def test_optional_prediction_fields_may_be_absent_and_envelope_defaults_apply():
    minimal = {"request_id": "r", "model": "m", "version": 3, "timestamp": 1.0, "features": {}, "prediction": None}
    event = PredictionEvent.from_dict(minimal)
    assert event.version == "3"
    assert (event.confidence, event.scores, event.latency_ms, event.segment) == (None, None, None, None)


def test_nan_feature_is_kept_for_the_data_quality_monitor():
    event = PredictionEvent.from_dict(prediction(features={"x": float("nan"), "y": None}))
    assert math.isnan(event.features["x"]) and event.features["y"] is None


def test_label_decodes_with_label_or_feedback():
    assert LabelEvent.from_dict(label()) == LabelEvent("req-1", "churn-model", NOON_UTC, label=1)
    feedback_only = LabelEvent.from_dict(label(label=_DROP, feedback=-1))
    assert (feedback_only.label, feedback_only.feedback) == (None, -1.0)


def test_infra_event_decodes_and_stringifies_attributes():
    event = InfraEvent.from_dict(infra())
    assert event == InfraEvent(
        source="fraud-api", metric="cpu_utilisation", value=45.5, timestamp=NOON_UTC, source_kind="service",
        unit="%", model="fraud-detector", attributes={"zone": "3"},
    )
    assert InfraEvent.from_dict(infra(source_kind=_DROP)).source_kind == "service"


def test_predictions_topic_tells_labels_from_predictions_by_type():
    assert isinstance(decode_prediction_topic(prediction()), PredictionEvent)
    assert isinstance(decode_prediction_topic(prediction(type=_DROP)), PredictionEvent)
    assert isinstance(decode_prediction_topic(label()), LabelEvent)


# --- malformed events: each rejected with a message naming what to fix -------------------------------

Decoder = Callable[[Any], Any]
P, L, I = PredictionEvent.from_dict, LabelEvent.from_dict, InfraEvent.from_dict

MALFORMED: list[tuple[str, Decoder, Any, str]] = [
    ("list instead of object", P, [prediction()], r"event must be a JSON object, got list"),
    ("string instead of object", I, "cpu=45", r"event must be a JSON object, got str"),
    ("missing request_id", P, prediction(request_id=_DROP), r"missing required field 'request_id'"),
    ("numeric request_id", P, prediction(request_id=17), r"field 'request_id' must be a non-empty string, got int"),
    ("empty request_id", P, prediction(request_id=""), r"field 'request_id' must be a non-empty string"),
    ("overlong model", P, prediction(model="m" * (MAX_STRING + 1)), rf"field 'model' is longer than {MAX_STRING}"),
    ("missing features", P, prediction(features=_DROP), r"missing required field 'features'"),
    ("features as list", P, prediction(features=[1, 2]), r"field 'features' must be an object, got list"),
    ("nested feature", P, prediction(features={"geo": {"lat": 1}}), r"feature 'geo' must be a number"),
    ("too many features", P, prediction(features={f"f{i}": i for i in range(MAX_FEATURES + 1)}),
     rf"field 'features' has {MAX_FEATURES + 1} entries, more than {MAX_FEATURES}"),
    ("missing prediction", P, prediction(prediction=_DROP), r"missing required field 'prediction'"),
    ("prediction as list", P, prediction(prediction=[0.1, 0.9]), r"field 'prediction' must be a number"),
    ("non-finite prediction", P, prediction(prediction=float("inf")), r"field 'prediction' must be finite"),
    ("confidence above 1", P, prediction(confidence=1.5), r"field 'confidence' must be in \[0, 1\], got 1.5"),
    ("negative confidence", P, prediction(confidence=-0.1), r"field 'confidence' must be in \[0, 1\]"),
    ("confidence as string", P, prediction(confidence="high"), r"field 'confidence' must be a number, got str"),
    ("confidence as bool", P, prediction(confidence=True), r"field 'confidence' must be a number, got bool"),
    ("NaN confidence", P, prediction(confidence=float("nan")), r"field 'confidence' must be finite"),
    ("negative latency", P, prediction(latency_ms=-1), r"field 'latency_ms' must be >= 0"),
    ("infinite latency", P, prediction(latency_ms=float("inf")), r"field 'latency_ms' must be finite"),
    ("scores as list", P, prediction(scores=[0.1]), r"field 'scores' must be an object"),
    ("NaN score", P, prediction(scores={"churn": float("nan")}), r"field 'scores.churn' must be finite"),
    ("numeric segment", P, prediction(segment=5), r"field 'segment' must be a non-empty string, got int"),
    ("missing timestamp", P, prediction(timestamp=_DROP), r"missing required field 'timestamp'"),
    ("timestamp not ISO", P, prediction(timestamp="yesterday"), r"field 'timestamp' is not an ISO 8601 timestamp"),
    ("timestamp without zone", P, prediction(timestamp="2024-05-01T12:00:00"), r"field 'timestamp' needs a time zone"),
    ("timestamp as bool", L, label(timestamp=True), r"field 'timestamp' must be a number, got bool"),
    ("infinite timestamp", I, infra(timestamp=float("inf")), r"field 'timestamp' must be finite"),
    ("unknown schema_version", P, prediction(schema_version=2), r"unknown schema_version 2"),
    ("schema_version as string", L, label(schema_version="1"), r"unknown schema_version '1'"),
    ("unknown type", P, prediction(type="click"), r"unknown event type 'click', expected 'prediction'"),
    ("unknown type on topic", decode_prediction_topic, prediction(type="click"), r"unknown event type 'click'"),
    ("infra type on label decoder", L, infra(), r"unknown event type 'infra', expected 'label'"),
    ("label without label or feedback", L, label(label=_DROP), r"needs 'label' or 'feedback'"),
    ("label with null label only", L, label(label=None), r"needs 'label' or 'feedback'"),
    ("label as object", L, label(label={"y": 1}), r"field 'label' must be a number"),
    ("feedback out of range", L, label(feedback=2), r"field 'feedback' must be in \[-1, 1\], got 2.0"),
    ("label missing request_id", L, label(request_id=_DROP), r"missing required field 'request_id'"),
    ("bad source_kind", I, infra(source_kind="database"), r"field 'source_kind' must be one of .*'database'"),
    ("value as string", I, infra(value="45%"), r"field 'value' must be a number, got str"),
    ("NaN value", I, infra(value=float("nan")), r"field 'value' must be finite"),
    ("missing metric", I, infra(metric=_DROP), r"missing required field 'metric'"),
    ("attributes as list", I, infra(attributes=["zone"]), r"field 'attributes' must be an object"),
]


@pytest.mark.parametrize("decode, event, message", [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_event_is_rejected_with_a_reason(decode, event, message):
    with pytest.raises(InvalidEvent, match=message):
        decode(event)


@pytest.mark.parametrize("version", [None, {"major": 1}, [1, 2]])
def test_version_of_wrong_type_is_rejected(version):
    with pytest.raises(InvalidEvent, match="'version'"):
        PredictionEvent.from_dict(prediction(version=version))


# --- codec -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, message",
    [
        (None, r"tombstone"),
        (b"", r"not valid JSON"),
        (b'{"request_id": "r1",', r"not valid JSON"),
        (b'{"confidence": NaN}', r"not valid JSON"),
        (b'{"latency_ms": Infinity}', r"not valid JSON"),
        (b'"' + b"x" * codec.MAX_MESSAGE_BYTES + b'"', rf"exceeds the {codec.MAX_MESSAGE_BYTES}-byte limit"),
    ],
    ids=["none", "empty", "truncated", "nan-literal", "infinity-literal", "oversize"],
)
def test_codec_rejects_what_is_not_one_json_document(raw, message):
    with pytest.raises(InvalidEvent, match=message):
        codec.loads(raw)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: b.decode()])
def test_codec_accepts_any_buffer_type(wrap):
    assert codec.loads(wrap(b'{"a": [1, 2.5, null]}')) == {"a": [1, 2.5, None]}


def test_codec_message_at_the_limit_is_accepted():
    raw = b'"' + b"x" * (codec.MAX_MESSAGE_BYTES - 2) + b'"'
    assert len(codec.loads(raw)) == codec.MAX_MESSAGE_BYTES - 2


def test_valid_json_that_is_not_an_object_reaches_the_decoder_and_is_rejected_there():
    with pytest.raises(InvalidEvent, match="got list"):
        decode_prediction_topic(codec.loads(b"[1, 2]"))


# --- detections and tickets --------------------------------------------------------------------------


def detection() -> Detection:
    return Detection(
        kind=DetectionKind.FEATURE_DRIFT,
        entity={"model": "churn-model", "version": "7", "feature": "spend"},
        score=0.37,
        severity=Severity.WARNING,
        event_time=NOON_UTC,
        detector="adwin_mean_shift",
        evidence={"before_mean": 60.4, "after_mean": 80.4, "direction": "up", "samples": 1520},
        summary="feature 'spend' drifted up",
    )


def ticket() -> Ticket:
    return Ticket(
        incident_id="880c26fd0f15cc78", dedup_key="model=churn-model|version=7", revision=3,
        status=TicketStatus.UPDATED, severity=Severity.CRITICAL, priority="P2",
        areas=(Area.DATA_OPERATIONS, Area.BUSINESS, Area.USER), primary_area=Area.DATA_OPERATIONS,
        summary="two signals", labels={"model": "churn-model", "version": "7", "feature": "spend,tenure"},
        kinds=(DetectionKind.FEATURE_DRIFT, DetectionKind.CONFIDENCE_DROP), started_at=NOON_UTC,
        last_seen=NOON_UTC + 90, occurrences=4, update_reason="new signal confidence_drop",
        runbook="https://emlops.dev/runbooks/feature-drift", detections=(detection().to_dict(),),
    )


def test_detection_to_dict_uses_plain_values():
    d = detection().to_dict()
    assert (d["kind"], d["severity"], d["entity"]["feature"]) == ("feature_drift", "warning", "spend")


@pytest.mark.parametrize("through_json", [False, True])
def test_detection_round_trips(through_json):
    data = detection().to_dict()
    if through_json:
        data = codec.loads(codec.dumps(data))
    assert Detection.from_dict(data) == detection()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kind": "gremlins"}, r"'gremlins' is not a valid DetectionKind"),
        ({"severity": "apocalyptic"}, r"'apocalyptic' is not a valid Severity"),
        ({"entity": "churn-model"}, r"field 'entity' must be an object"),
        ({"score": "high"}, r"field 'score' must be a number"),
        ({"detector": _DROP}, r"missing required field 'detector'"),
    ],
)
def test_malformed_detection_is_rejected(changes, message):
    with pytest.raises(InvalidEvent, match=message):
        Detection.from_dict(_changed(detection().to_dict(), changes))


@pytest.mark.parametrize("ended_at", [None, NOON_UTC + 700])
def test_ticket_round_trips_through_json(ended_at):
    original = replace(ticket(), ended_at=ended_at)
    data = codec.loads(codec.dumps(original.to_dict()))
    assert data["schema_version"] == 1
    assert data["areas"] == ["Data Operations", "Business", "User"]
    assert Ticket.from_dict(data) == original
