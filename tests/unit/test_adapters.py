"""Input adapters on payloads written from the published formats (see fixtures/README.md): KServe and Seldon
payload logs paired into prediction events, Telegraf and OTLP metrics into infrastructure events."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from models.adapters import FORMATS, SourceLink, build_adapter, check_options, target_of
from models.adapters.cloudevents import from_kafka
from models.adapters.inference import request_rows, response_outputs
from models.adapters.payload_log import Half, Pairing
from models.schema import InfraEvent, InvalidEvent, PredictionEvent

FIXTURES = Path(__file__).parent / "fixtures"
KSERVE_REQUEST = "org.kubeflow.serving.inference.request"
KSERVE_RESPONSE = "org.kubeflow.serving.inference.response"
SELDON_REQUEST = "io.seldon.serving.inference.request"
SELDON_RESPONSE = "io.seldon.serving.inference.response"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def kserve_headers(ce_type: str, event_id: str, time: str, service: str = "iris-classifier",
                   endpoint: str = "default") -> list[tuple[str, bytes]]:
    """What a Knative KafkaSink writes for KServe's logger: binary-mode ce_ headers (Kafka protocol binding)."""
    return [(k, v.encode()) for k, v in (
        ("ce_specversion", "1.0"), ("ce_id", event_id), ("ce_type", ce_type),
        ("ce_source", f"http://{service}-predictor.default/"), ("ce_time", time),
        ("ce_inferenceservicename", service), ("ce_namespace", "default"), ("ce_component", "predictor"),
        ("ce_endpoint", endpoint), ("content-type", "application/json"),
    )]


def seldon_kafka_headers(kind: str, request_id: str, model_id: str = "classifier") -> list[tuple[str, bytes]]:
    """Seldon Core's direct Kafka logger (LOGGER_KAFKA_BROKER): plain headers, no CloudEvents prefix."""
    return [(k, v.encode()) for k, v in (
        ("type", kind), ("content-type", "application/json"), ("modelid", model_id), ("requestid", request_id),
        ("inferenceservicename", "iris-sdep"), ("namespace", "seldon"), ("endpoint", "default"),
        ("protocol", "seldon"),
    )]


# --- KServe payload logs --------------------------------------------------------------------------------------


def test_kserve_v2_pair_becomes_one_prediction_event_per_row() -> None:
    adapter = build_adapter("kserve")
    request_id = fixture("oip_v2_request.json")["id"]
    assert adapter.translate(raw("oip_v2_request.json"),
                             kserve_headers(KSERVE_REQUEST, request_id, "2025-11-27T10:00:00.000Z"), 100.0) == []
    events = adapter.translate(raw("oip_v2_response.json"),
                               kserve_headers(KSERVE_RESPONSE, request_id, "2025-11-27T10:00:00.025Z"), 100.1)
    assert [e.request_id for e in events] == [f"{request_id}/0", f"{request_id}/1"]
    first = events[0]
    assert isinstance(first, PredictionEvent)
    assert (first.model, first.version) == ("iris-classifier", "3")  # model_version of the v2 response
    assert first.features == {"input-0_0": 6.8, "input-0_1": 2.8, "input-0_2": 4.8, "input-0_3": 1.4}
    assert first.prediction == 1 and first.confidence == 0.9
    assert first.scores == {"0": 0.05, "1": 0.9, "2": 0.05}
    assert first.latency_ms == 25.0
    assert first.timestamp == pytest.approx(1764237600.0)
    assert events[1].prediction == 2 and events[1].confidence == 0.7
    assert adapter.stats()["paired"] == 1 and adapter.stats()["waiting"] == 0


def test_kserve_response_before_request_pairs_too() -> None:
    adapter = build_adapter("kserve")
    assert adapter.translate(raw("kserve_v1_response.json"), kserve_headers(KSERVE_RESPONSE, "r9", "2025-11-27T10:00:01Z")) == []
    events = adapter.translate(raw("kserve_v1_request.json"), kserve_headers(KSERVE_REQUEST, "r9", "2025-11-27T10:00:00Z"))
    assert [(e.features, e.prediction) for e in events] == [
        ({"f0": 6.8, "f1": 2.8, "f2": 4.8, "f3": 1.4}, 1), ({"f0": 6.0, "f1": 3.4, "f2": 4.5, "f3": 1.6}, 2)]
    assert events[0].version == "default"  # v1 has no model_version: the endpoint (default/canary) is the version
    assert events[0].latency_ms == 1000.0


def test_catalogue_feature_names_replace_positional_names() -> None:
    names = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    adapter = build_adapter("kserve", feature_names={"iris-classifier": names})
    adapter.translate(raw("oip_v2_request.json"), kserve_headers(KSERVE_REQUEST, "a", "2025-11-27T10:00:00Z"))
    events = adapter.translate(raw("oip_v2_response.json"), kserve_headers(KSERVE_RESPONSE, "a", "2025-11-27T10:00:00Z"))
    assert list(events[0].features) == list(names)
    wrong = build_adapter("kserve", feature_names={"iris-classifier": ("a", "b")})
    wrong.translate(raw("oip_v2_request.json"), kserve_headers(KSERVE_REQUEST, "b", "2025-11-27T10:00:00Z"))
    with pytest.raises(InvalidEvent, match="catalogue names 2 features but a request row has 4 values"):
        wrong.translate(raw("oip_v2_response.json"), kserve_headers(KSERVE_RESPONSE, "b", "2025-11-27T10:00:00Z"))


def test_structured_mode_cloudevents_pair_like_binary_ones() -> None:
    adapter = build_adapter("kserve")

    def structured(kind: str, body: Any, time: str, b64: bool = False) -> bytes:
        event = {"specversion": "1.0", "id": "s-1", "type": kind, "source": "http://churn/", "time": time,
                 "datacontenttype": "application/json", "inferenceservicename": "churn", "endpoint": "canary"}
        if b64:
            event["data_base64"] = base64.b64encode(orjson.dumps(body)).decode()
        else:
            event["data"] = body
        return orjson.dumps(event)

    content_type = [("content-type", b"application/cloudevents+json; charset=UTF-8")]
    request = fixture("mlserver_pandas_request.json")
    assert adapter.translate(structured(KSERVE_REQUEST, request, "2025-11-27T10:00:00Z"), content_type) == []
    response = {"model_name": "churn", "outputs": [{"name": "predict", "shape": [3], "datatype": "BOOL",
                                                    "data": [False, True, False]}]}
    events = adapter.translate(structured(KSERVE_RESPONSE, response, "2025-11-27T10:00:00.040Z", b64=True), content_type)
    assert [e.features for e in events] == [
        {"tenure_months": 14, "monthly_spend": 61.5, "plan": "pro"},
        {"tenure_months": 2, "monthly_spend": 20.0, "plan": "free"},
        {"tenure_months": 40, "monthly_spend": 99.9, "plan": "team"},
    ]
    assert [e.prediction for e in events] == [False, True, False]
    assert events[0].version == "canary" and events[0].latency_ms == 40.0


# --- Seldon payload logs --------------------------------------------------------------------------------------


def test_seldon_direct_kafka_logger_pairs_on_requestid() -> None:
    adapter = build_adapter("seldon")
    assert adapter.translate(raw("seldon_request.json"), seldon_kafka_headers(SELDON_REQUEST, "puid-1"), 50.0) == []
    [event] = adapter.translate(raw("seldon_response.json"), seldon_kafka_headers(SELDON_RESPONSE, "puid-1"), 50.2)
    assert event.model == "iris-sdep" and event.version == "default" and event.request_id == "puid-1"
    assert event.features == {"sepal_length": 5.9, "sepal_width": 4.0, "petal_length": 2.1, "petal_width": 1.0}
    assert event.prediction == "t:0" and event.confidence == 0.93
    assert event.scores == {"t:0": 0.93, "t:1": 0.06, "t:2": 0.01}
    assert event.timestamp == 50.0 and event.latency_ms is None  # no 'time' attribute: the record time


def test_seldon_cloudevents_pair_on_requestid_not_on_their_fresh_ce_ids() -> None:
    adapter = build_adapter("seldon", {"model_attribute": "modelid"})

    def headers(kind: str, ce_id: str, time: str) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in (
            ("ce_specversion", "1.0"), ("ce_id", ce_id), ("ce_type", kind), ("ce_source", "http://iris-sdep/"),
            ("ce_time", time), ("ce_requestid", "puid-7"), ("ce_modelid", "classifier"),
            ("ce_inferenceservicename", "iris-sdep"), ("ce_namespace", "seldon"), ("ce_endpoint", "default"),
            ("content-type", "application/json"))]

    body = {"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [0.5, 1.5]}}}
    out = {"data": {"names": ["proba"], "tensor": {"shape": [1, 1], "values": [0.8]}}}
    assert adapter.translate(orjson.dumps(body), headers(SELDON_REQUEST, "uuid-a", "2025-11-27T10:00:00Z")) == []
    [event] = adapter.translate(orjson.dumps(out), headers(SELDON_RESPONSE, "uuid-b", "2025-11-27T10:00:00.005Z"))
    assert event.model == "classifier" and event.features == {"a": 0.5, "b": 1.5} and event.prediction == 0.8
    assert event.latency_ms == 5.0


def test_seldon_feedback_events_are_ignored_and_counted() -> None:
    adapter = build_adapter("seldon")
    assert adapter.translate(b'{"reward": 1}', seldon_kafka_headers("io.seldon.serving.feedback", "p")) == []
    assert adapter.stats()["ignored"] == 1


# --- what gets dead-lettered, and why -----------------------------------------------------------------------


@pytest.mark.parametrize("value,headers,reason", [
    (b'{"a": 1}', [], "not a CloudEvent"),
    (b'{"instances": [[1]]}', [("ce_type", KSERVE_REQUEST.encode())], "lacks the required attribute 'id'"),
    (b'{"instances": [[1]]}', [("ce_id", b"1"), ("ce_type", b"com.example.other")], "unknown kserve event type"),
    (b'{"instances": [[1]]}', [("ce_id", b"1"), ("ce_type", KSERVE_REQUEST.encode()), ("ce_specversion", b"0.3")],
     "specversion '0.3'"),
    (b'\x89PNG', [("ce_id", b"1"), ("ce_type", KSERVE_REQUEST.encode()), ("content-type", b"image/png")],
     "only JSON payloads"),
    (b"not json", [("ce_id", b"1"), ("ce_type", KSERVE_REQUEST.encode())], "not valid JSON"),
    (b'{"instances": [[1]]}', [("ce_id", b"1"), ("ce_type", KSERVE_REQUEST.encode()), ("ce_time", b"yesterday")],
     "'time' is not an RFC 3339 timestamp"),
])
def test_undecodable_payload_log_messages_raise_a_precise_reason(value: bytes, headers: list, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        build_adapter("kserve").translate(value, headers)


@pytest.mark.parametrize("body,reason", [
    ({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}, "has 3 values for shape"),
    ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP99", "data": [1]}]}, "unknown datatype 'FP99'"),
    ({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                 {"name": "y", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}, "disagree on the batch size"),
    ({"instances": []}, "non-empty 'instances'"),
    ({"instances": [[{"nested": 1}]]}, "must be a number, string, boolean or null"),
    ({"strData": "hello"}, "carry no tensor"),
    ({"query": "what"}, "neither v1"),
])
def test_bad_request_bodies_are_named(body: Any, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        request_rows(body)


def test_request_and_response_must_have_as_many_rows() -> None:
    adapter = build_adapter("kserve")
    adapter.translate(raw("kserve_v1_request.json"), kserve_headers(KSERVE_REQUEST, "x", "2025-11-27T10:00:00Z"))
    with pytest.raises(InvalidEvent, match="has 2 rows but its response 1"):
        adapter.translate(b'{"predictions": [1]}', kserve_headers(KSERVE_RESPONSE, "x", "2025-11-27T10:00:00Z"))


def test_nested_and_flat_v2_data_read_the_same() -> None:
    flat = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}]}
    nested = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}]}
    assert request_rows(flat) == request_rows(nested) == [{"x_0": 1, "x_1": 2}, {"x_0": 3, "x_1": 4}]


def test_named_prediction_output_is_used_when_configured() -> None:
    body = fixture("oip_v2_response.json")
    assert [o.prediction for o in response_outputs(body, "label")] == [1, 2]
    with pytest.raises(InvalidEvent, match="no output named 'predict'"):
        response_outputs(body, "predict")


# --- pairing: bounded, with a time-to-live in message time ------------------------------------------------------


def _half(t: float) -> Half:
    return Half(from_kafka(b"{}", [("ce_id", b"i"), ("ce_type", b"t")]), t)


def test_pairing_expires_halves_older_than_the_ttl_and_counts_them() -> None:
    pairing = Pairing(max_pending=10, ttl_s=30.0)
    assert pairing.offer(("m", "a"), "request", _half(0.0), 0.0) is None
    assert pairing.offer(("m", "b"), "request", _half(20.0), 20.0) is None
    assert pairing.offer(("m", "c"), "request", _half(40.0), 40.0) is None  # 'a' is now 40 s old: gone
    assert pairing.offer(("m", "a"), "response", _half(41.0), 41.0) is None
    assert pairing.expired == 1
    assert pairing.offer(("m", "b"), "response", _half(42.0), 42.0) is not None
    assert pairing.stats() == {"waiting": 2, "paired": 1, "expired": 1, "evicted": 0, "replaced": 0}


def test_pairing_evicts_the_oldest_beyond_its_bound() -> None:
    pairing = Pairing(max_pending=2, ttl_s=1e9)
    for key in ("a", "b", "c"):
        pairing.offer((key,), "request", _half(0.0), 0.0)
    assert len(pairing) == 2 and pairing.evicted == 1
    assert pairing.offer(("a",), "response", _half(1.0), 1.0) is None  # 'a' was evicted
    assert pairing.offer(("c",), "response", _half(1.0), 1.0) is not None


def test_a_redelivered_half_replaces_the_waiting_one() -> None:
    pairing = Pairing()
    pairing.offer(("a",), "request", _half(0.0), 0.0)
    pairing.offer(("a",), "request", _half(1.0), 1.0)
    request, _ = pairing.offer(("a",), "response", _half(2.0), 2.0) or (None, None)
    assert request is not None and request.received == 1.0 and pairing.replaced == 1


@pytest.mark.parametrize("kwargs", [{"max_pending": 0}, {"ttl_s": 0}])
def test_pairing_rejects_bad_bounds_at_construction(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Pairing(**kwargs)


# --- Telegraf -------------------------------------------------------------------------------------------------


def test_telegraf_single_metric_gives_one_event_per_field_with_series_tags() -> None:
    events = build_adapter("telegraf").translate(raw("telegraf_single.json"))
    assert all(isinstance(e, InfraEvent) for e in events)
    assert [(e.source, e.source_kind, e.metric, e.value) for e in events] == [
        ("fraud-api", "service", "cpu_usage_user{cpu=cpu-total}", 42.5),
        ("fraud-api", "service", "cpu_usage_system{cpu=cpu-total}", 7.25),
        ("fraud-api", "service", "cpu_usage_idle{cpu=cpu-total}", 50.25),
    ]
    assert events[0].timestamp == 1764250000.0 and events[0].attributes["host"] == "node-7"


def test_telegraf_batch_reads_every_metric_skips_strings_and_names_value_fields_by_metric() -> None:
    links = {"fraud-features": SourceLink("pipeline", "fraud-detector")}
    events = build_adapter("telegraf", links=links).translate(raw("telegraf_batch.json"))
    assert [(e.source, e.source_kind, e.metric, e.value, e.model) for e in events] == [
        ("fraud-api", "service", "mem_used_percent", 61.0, None),
        ("fraud-api", "service", "mem_available", 6442450944.0, None),
        ("fraud-features", "pipeline", "freshness_seconds", 840.0, "fraud-detector"),
    ]


def test_telegraf_timestamp_units_and_rfc3339() -> None:
    ms = orjson.dumps({"name": "up", "tags": {"service": "s"}, "fields": {"value": 1}, "timestamp": 1764250000123})
    [event] = build_adapter("telegraf", {"timestamp_units": "1ms"}).translate(ms)
    assert event.timestamp == pytest.approx(1764250000.123)
    text = orjson.dumps({"name": "up", "tags": {"service": "s"}, "fields": {"value": True},
                         "timestamp": "2025-11-27T10:00:00Z"})
    [event] = build_adapter("telegraf").translate(text)
    assert event.value == 1.0 and event.timestamp == 1764237600.0


@pytest.mark.parametrize("doc,reason", [
    ({"name": "cpu", "tags": {"rack": "r1"}, "fields": {"v": 1}, "timestamp": 1}, "none of the source tags"),
    ({"name": "cpu", "tags": {"host": "h"}, "fields": {}, "timestamp": 1}, "'fields' must be a non-empty object"),
    ({"name": "cpu", "tags": {"host": "h"}, "fields": {"v": 1}}, "needs a numeric 'timestamp'"),
    ({"metrics": {"name": "cpu"}}, "'metrics' must be a list"),
    ({"name": "", "tags": {}, "fields": {"v": 1}, "timestamp": 1}, "needs a 'name'"),
])
def test_telegraf_rejects_what_it_cannot_read(doc: Any, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        build_adapter("telegraf").translate(orjson.dumps(doc))


# --- OTLP/JSON ------------------------------------------------------------------------------------------------


def test_otlp_gauge_sum_and_histogram_points_become_events() -> None:
    events = build_adapter("otlp").translate(raw("otlp_metrics.json"))
    got = [(e.source, e.source_kind, e.metric, e.value, e.unit) for e in events]
    assert got == [
        ("checkout-api", "service", "process.cpu.utilization{state=user}", 0.42, "1"),
        ("checkout-api", "service", "process.cpu.utilization{state=system}", 0.08, "1"),
        ("checkout-api", "service", "http.server.active_requests", 17.0, "{request}"),
        ("checkout-api", "service", "http.server.requests", 1200.0, "{request}"),
        ("checkout-api", "service", "http.server.request.duration.count{http.route=/pay}", 1200.0, None),
        ("checkout-api", "service", "http.server.request.duration.mean{http.route=/pay}", 0.08, "s"),
    ]
    assert events[0].timestamp == 1764250000.0
    assert events[0].attributes["service.version"] == "2.4.1"


def _cumulative(value: str, start: str = "1", time: str = "2000000000") -> bytes:
    return orjson.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "node-1"}},
                                    {"key": "emlops.source_kind", "value": {"stringValue": "pipeline"}},
                                    {"key": "emlops.model", "value": {"stringValue": "churn"}}]},
        "scopeMetrics": [{"metrics": [{"name": "rows.written", "sum": {
            "aggregationTemporality": 2, "isMonotonic": True,
            "dataPoints": [{"asInt": value, "startTimeUnixNano": start, "timeUnixNano": time}]}}]}]}]})


def test_otlp_cumulative_counters_are_differenced_per_series_and_resets_skipped() -> None:
    adapter = build_adapter("otlp")
    assert adapter.translate(_cumulative("100")) == []  # first point: nothing to difference yet
    [event] = adapter.translate(_cumulative("130"))
    assert (event.source, event.source_kind, event.model, event.value) == ("node-1", "pipeline", "churn", 30.0)
    assert adapter.translate(_cumulative("5", start="2")) == []  # restarted counter
    assert adapter.stats()["resets"] == 1
    assert adapter.translate(_cumulative("9", start="2"))[0].value == 4.0


def test_otlp_skips_points_without_value_and_unsupported_types() -> None:
    doc = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                                "scopeMetrics": [{"metrics": [
                                    {"name": "g", "gauge": {"dataPoints": [{"asDouble": 1, "flags": 1,
                                                                            "timeUnixNano": "1"}]}},
                                    {"name": "e", "exponentialHistogram": {"dataPoints": []}},
                                ]}]}]}
    adapter = build_adapter("otlp")
    assert adapter.translate(orjson.dumps(doc)) == []
    assert adapter.stats()["skipped"] == 2


@pytest.mark.parametrize("doc,reason", [
    ({"resource_metrics": []}, "need a 'resourceMetrics' list"),
    ({"resourceMetrics": [{"resource": {"attributes": []}, "scopeMetrics": []}]}, "none of the attributes"),
    ({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                           "scopeMetrics": [{"metrics": [{"name": "g", "gauge": {"dataPoints": [
                               {"asDouble": 1, "timeUnixNano": "soon"}]}}]}]}]}, "timeUnixNano must be an integer"),
    ({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                           "scopeMetrics": [{"metrics": [{"name": "g", "gauge": {"dataPoints": [
                               {"timeUnixNano": "1"}]}}]}]}]}, "neither 'asDouble' nor 'asInt'"),
])
def test_otlp_rejects_what_it_cannot_read(doc: Any, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        build_adapter("otlp").translate(orjson.dumps(doc))


# --- the registry ---------------------------------------------------------------------------------------------


def test_every_format_names_its_agent_and_checks_its_options() -> None:
    assert set(FORMATS) == {"predictions", "infrastructure", "kserve", "seldon", "telegraf", "otlp"}
    assert {f: target_of(f) for f in FORMATS} == {
        "predictions": "predictions", "infrastructure": "infrastructure", "kserve": "predictions",
        "seldon": "predictions", "telegraf": "infrastructure", "otlp": "infrastructure"}
    with pytest.raises(ValueError, match="unknown input format 'avro'"):
        target_of("avro")
    with pytest.raises(ValueError, match="has no option 'pair_ttl'"):
        check_options("kserve", {"pair_ttl": 5})
    with pytest.raises(ValueError, match="timestamp_units"):
        build_adapter("telegraf", {"timestamp_units": "1h"})


def test_native_formats_decode_like_the_built_in_topics() -> None:
    event = {"type": "infra", "source": "s", "metric": "m", "value": 1, "timestamp": 1}
    assert build_adapter("infrastructure").translate(orjson.dumps(event)) == [InfraEvent.from_dict(event)]
    with pytest.raises(InvalidEvent, match="missing required field"):
        build_adapter("predictions").translate(b'{"model": "m"}')
