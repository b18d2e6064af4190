"""Generated garbage at every decoder: each input is either accepted as a valid record or refused with
InvalidEvent and a reason. Any other exception would crash an agent instead of dead-lettering the message."""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import codec
from models.schema import (
    ActionKind,
    Detection,
    DetectionKind,
    InfraEvent,
    InvalidEvent,
    OperatorAction,
    Severity,
    Silence,
    decode_prediction_topic,
)

DECODERS: list[Callable[[Any], Any]] = [
    decode_prediction_topic, InfraEvent.from_dict, Detection.from_dict, OperatorAction.from_dict, Silence.from_dict,
]
FIELDS = ["type", "schema_version", "request_id", "model", "version", "timestamp", "features", "prediction",
          "confidence", "scores", "latency_ms", "segment", "label", "feedback", "source", "source_kind", "metric",
          "value", "unit", "attributes", "kind", "entity", "score", "severity", "event_time", "detector", "action",
          "dedup_key", "by", "at", "areas", "id", "matchers", "created_by", "starts_at", "expires_at", "evidence",
          "summary", "comment", "until_resolved"]
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
names = st.text(min_size=1, max_size=8)
numbers = st.floats(min_value=0, max_value=2e9)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes anything: so validators past the first field get exercised too."""
    return st.one_of(valid, valid, valid, json_values)


# Objects built from the real field names reach deep into the validators, not just the first check.
near_miss = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS)),
    st.fixed_dictionaries({
        "type": st.sampled_from(["prediction", "label", "infra"]), "request_id": maybe(names),
        "model": maybe(names), "version": maybe(names), "timestamp": maybe(numbers),
        "features": maybe(st.dictionaries(names, scalars, max_size=5)), "prediction": json_values,
        "source": maybe(names), "metric": maybe(names), "value": maybe(numbers), "label": json_values,
        "feedback": json_values, "confidence": json_values, "scores": json_values, "attributes": json_values,
        "source_kind": json_values}),
    st.fixed_dictionaries({
        "kind": st.sampled_from([k.value for k in DetectionKind]), "severity": st.sampled_from([s.value for s in Severity]),
        "entity": maybe(st.dictionaries(names, names, max_size=3)), "score": maybe(numbers),
        "event_time": maybe(numbers), "detector": maybe(names), "evidence": json_values, "summary": json_values}),
    st.fixed_dictionaries({
        "action": st.sampled_from([a.value for a in ActionKind]), "dedup_key": maybe(names), "by": maybe(names),
        "at": maybe(numbers), "areas": json_values, "comment": json_values}),
    st.fixed_dictionaries({
        "id": maybe(names), "matchers": maybe(st.dictionaries(names, names, min_size=1, max_size=3)),
        "created_by": maybe(names), "starts_at": maybe(numbers), "expires_at": maybe(numbers),
        "until_resolved": json_values, "comment": json_values}),
)


def decode_all(value: Any) -> None:
    for decode in DECODERS:
        try:
            decode(value)
        except InvalidEvent as exc:
            assert str(exc), "a refusal must say why"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(near_miss)
def test_near_miss_objects_are_accepted_or_refused_with_a_reason(value: dict[str, Any]) -> None:
    decode_all(value)


@settings(max_examples=300)
@given(json_values)
def test_any_json_value_is_accepted_or_refused_with_a_reason(value: Any) -> None:
    decode_all(value)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_are_refused_by_the_codec(raw: bytes) -> None:
    try:
        value = codec.loads(raw)
    except InvalidEvent:
        return
    decode_all(value)
