"""The ops API against a real worker and broker: every route, authentication, an incident acknowledged
then resolved and found in history, silences, and /metrics counters equal to what the test produced."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any, Iterator
from urllib.parse import quote

import jsonschema
import pytest

from tests.integration.kafka_io import produce, read_until, tickets
from tests.integration.ops_support import (
    TOKEN, Cluster, by_label, detection_kinds, http, ops_workers, read_all, scrape, ticket_revisions, wait_for,
)

MODEL, SOURCE = "ops-drift", "ops-api"
KEY = f"model={MODEL}|version=1"
PREDICTIONS, BAD_PREDICTIONS, READINGS, BAD_READINGS = 1600, 3, 1800, 1


def _prediction(i: int, rng: random.Random) -> dict[str, Any]:
    x = rng.gauss(0, 1) + (3 if i >= 1000 else 0)
    return {"type": "prediction", "request_id": f"{MODEL}-{i}", "model": MODEL, "version": "1",
            "timestamp": time.time(), "features": {"x": round(x, 4), "y": round(rng.gauss(5, 1), 4)},
            "prediction": 1, "confidence": 0.9, "latency_ms": 10.0}


def _reading(i: int, rng: random.Random) -> dict[str, Any]:
    name, mean, std = (("cpu", 40.0, 4.0), ("memory", 60.0, 2.0), ("errors", 0.01, 0.002))[i % 3]
    value = rng.gauss(97.0, 1.0) if name == "cpu" and i >= 1500 else rng.gauss(mean, std)
    return {"type": "infra", "source": SOURCE, "metric": name, "value": value, "timestamp": time.time()}


BAD = [b"not json", b'{"type": "prediction", "model": "m", "version": "1", "timestamp": 1, "features": {},'
       b' "prediction": 1}', b'{"type": "prediction", "request_id": "r", "model": "m", "version": "1",'
       b' "timestamp": "soon", "features": {}, "prediction": 1}']


@pytest.fixture(scope="module")
def ops(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One worker; a drifting model, an overheating service and some garbage, until both tickets exist."""
    env = {"EMLOPS_GROUP_INTERVAL_S": "3600", "EMLOPS_RESOLVE_AFTER_S": "3600"}
    with ops_workers(bootstrap, tmp_path_factory.mktemp("ops-api"), env=env) as cluster:
        s, rng = cluster.settings, random.Random(3)

        def opened(records: list[Any]) -> bool:
            found = tickets(records)
            return any(t["labels"].get("model") == MODEL for t in found) and \
                any(t["labels"].get("source") == SOURCE for t in found)

        async def scenario() -> None:
            await produce(s, s.topics.predictions, [(MODEL, _prediction(i, rng)) for i in range(PREDICTIONS)])
            await produce(s, s.topics.predictions, [("m", raw) for raw in BAD])
            await produce(s, s.topics.infrastructure, [(SOURCE, _reading(i, rng)) for i in range(READINGS)])
            await produce(s, s.topics.infrastructure, [(SOURCE, b'{"type": "infra", "source": "x"}')])
            await read_until(s, s.topics.incidents, opened, timeout=180)

        try:
            asyncio.run(scenario())
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log:\n{cluster.workers[0].log_tail()}") from None
        yield cluster


def _api(cluster: Cluster, path: str) -> str:
    return f"{cluster.urls[0]}/api/v1{path}"


def _incident(cluster: Cluster) -> dict[str, Any]:
    answer = http("GET", _api(cluster, f"/incidents/{quote(KEY, safe='')}"))
    assert answer.status == 200, answer.text
    return answer.body


# --- reading ------------------------------------------------------------------------------------------


def test_health_ready_dashboard_files_and_openapi(ops: Cluster) -> None:
    url = ops.urls[0]
    health = http("GET", f"{url}/health")
    assert health.status == 200 and health.body["status"] == "ok"
    assert http("GET", f"{url}/ready").body == {"ready": True, "not_ready": []}
    redirect = http("GET", f"{url}/dashboard")
    assert redirect.status == 302 and redirect.headers["Location"] == "/dashboard/"
    page = http("GET", f"{url}/dashboard/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html") and "emlops" in page.text
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        answer = http("GET", f"{url}/dashboard/static/{name}")
        assert answer.status == 200 and answer.headers["Content-Type"].startswith(kind) and answer.text
    assert http("GET", f"{url}/dashboard/static/..%2Fviews.py").status == 404
    document = http("GET", f"{url}/api/v1/openapi.json")
    assert document.status == 200 and document.body["openapi"].startswith("3.1")
    assert document.headers["X-Emlops-Worker"] == url


def test_incident_list_filters_and_one_incident_with_its_revisions(ops: Cluster) -> None:
    listed = http("GET", _api(ops, "/incidents?state=open"))
    assert listed.status == 200 and listed.body["partial"] is False
    assert listed.body["workers"] == [{"url": ops.urls[0], "ok": True}]
    keys = {t["dedup_key"] for t in listed.body["incidents"]}
    assert {KEY, f"source={SOURCE}"} <= keys
    drift = next(t for t in listed.body["incidents"] if t["dedup_key"] == KEY)
    assert drift["current"] is True and "feature_drift" in drift["kinds"] and drift["worker"] == ops.urls[0]
    assert drift["detections"][0]["evidence"]["after_mean"] > 1.0

    only = http("GET", _api(ops, f"/incidents?model={MODEL}&area=Data%20Operations"))
    assert [t["dedup_key"] for t in only.body["incidents"]] == [KEY]
    assert http("GET", _api(ops, f"/incidents?source={SOURCE}&area=Business")).body["incidents"] == []
    assert http("GET", _api(ops, "/incidents?state=resolved")).body["incidents"] == []
    assert http("GET", _api(ops, "/incidents?limit=1")).body["matched"] == len(keys)
    since = http("GET", _api(ops, f"/incidents?since={time.time() + 3600:.0f}"))
    assert since.body["incidents"] == []
    bad = http("GET", _api(ops, "/incidents?priority=P7"))
    assert bad.status == 400 and "priority" in bad.body["error"]

    one = _incident(ops)
    assert one["key"] == KEY and one["worker"] == ops.urls[0]
    assert one["ticket"]["incident_id"] == drift["incident_id"]
    assert [r["revision"] for r in one["revisions"]] == list(range(1, len(one["revisions"]) + 1))
    missing = http("GET", _api(ops, "/incidents/" + quote("model=nobody|version=1", safe="")))
    assert missing.status == 404 and "nobody" in missing.body["error"]


def test_models_services_and_workers_with_their_series(ops: Cluster) -> None:
    def model() -> dict[str, Any] | None:
        answer = http("GET", _api(ops, f"/models?model={MODEL}&points=10"))
        found = [m for m in answer.body["models"] if m["model"] == MODEL]
        series = (found[0].get("series") or {}) if found else {}
        done = len(series.get("t", [])) >= 2 and series["values"]["predictions"][-1] == PREDICTIONS
        return found[0] if done else None

    entry = wait_for(model, 20, "sampled points of the model's series up to its last prediction")
    assert entry["version"] == "1" and entry["worker"] == ops.urls[0]
    assert entry["state"]["predictions"] == PREDICTIONS
    assert set(entry["state"]["features"]) >= {"x", "y"}
    assert len(entry["series"]["t"]) <= 10
    assert "features.x" in entry["series"]["values"]
    everything = http("GET", _api(ops, "/models?series=false"))
    assert [m["model"] for m in everything.body["models"]] == [MODEL]
    assert "series" not in everything.body["models"][0]
    assert http("GET", _api(ops, "/models?points=1")).status == 400

    services = http("GET", _api(ops, f"/services?source={SOURCE}")).body["services"]
    assert [s["source"] for s in services] == [SOURCE]
    assert services[0]["state"]["events"] == READINGS and "cpu" in services[0]["state"]["metrics"]
    assert http("GET", _api(ops, "/services?series=maybe")).status == 400

    workers = http("GET", _api(ops, "/workers")).body
    assert workers["self"] == ops.urls[0] and workers["partial"] is False
    (worker,) = workers["workers"]
    assert worker["ready"] is True
    assert worker["partitions"][ops.settings.topics.predictions] == [0, 1, 2, 3]
    assert worker["monitored"] == {"models": 1, "label_joins": 1, "services": 1}


def test_metrics_parse_and_count_exactly_what_the_test_produced(ops: Cluster) -> None:
    s, url = ops.settings, ops.urls[0]
    expected_consumed = {s.topics.predictions: PREDICTIONS + len(BAD), s.topics.infrastructure: READINGS + BAD_READINGS}
    expected_bad = {s.topics.predictions: len(BAD), s.topics.infrastructure: BAD_READINGS}

    def settled() -> tuple[dict, list[dict[str, Any]], Counter[str]] | None:
        samples = scrape(url)
        revisions = ticket_revisions(s)
        kinds = detection_kinds(s)
        ok = (by_label(samples, "emlops_events_consumed_total", "topic") == expected_consumed
              and by_label(samples, "emlops_detections_total", "kind") == dict(kinds)
              and sum(by_label(samples, "emlops_ticket_revisions_total", "status").values()) == len(revisions))
        return (samples, revisions, kinds) if ok else None

    samples, revisions, kinds = wait_for(settled, 60, "metrics equal to the topics' contents", every=1)
    assert kinds["feature_drift"] >= 1 and kinds["infra_anomaly"] >= 1
    assert by_label(samples, "emlops_decode_failures_total", "topic") == expected_bad
    assert by_label(samples, "emlops_dead_lettered_total", "topic") == expected_bad
    assert len(read_all(s, s.topics.dead_letter)) == sum(expected_bad.values())
    assert by_label(samples, "emlops_ticket_revisions_total", "status") == dict(Counter(r["status"] for r in revisions))
    per_area = Counter((a, r["priority"], r["status"]) for r in revisions for a in r["areas"])
    assert {tuple(dict(labels)[k] for k in ("area", "priority", "status")): v
            for (name, labels), v in samples.items() if name == "emlops_tickets_total"} == dict(per_area)
    # No operator has acted yet and nothing was rate-limited, so every revision came from a detection.
    assert samples[("emlops_processing_latency_seconds_count", ())] == len(revisions)
    assert 0 < samples[("emlops_processing_latency_seconds_sum", ())] < 60 * len(revisions)

    latest = {r["dedup_key"]: r for r in revisions}
    open_by_area = Counter(a for r in latest.values() if r["status"] != "resolved" for a in r["areas"])
    open_gauge: Counter[str] = Counter()
    for (name, labels), v in samples.items():
        if name == "emlops_open_incidents":
            open_gauge[dict(labels)["area"]] += int(v)
    assert open_gauge == open_by_area
    assert by_label(samples, "emlops_monitored_keys", "fleet") == {"models": 1, "label_joins": 1, "services": 1}
    assert samples[("emlops_monitor_evictions_total", (("fleet", "models"),))] == 0
    assert samples[("emlops_ready", ())] == 1
    lag = {labels: v for (name, labels), v in samples.items() if name == "emlops_consumer_lag"}
    assert lag and all(v >= 0 for v in lag.values())
    assert sum(v for labels, v in lag.items() if dict(labels)["topic"] == s.topics.predictions) == 0


# --- acting -----------------------------------------------------------------------------------------


def test_actions_without_the_right_token_or_with_bad_input_are_refused(ops: Cluster) -> None:
    path = _api(ops, f"/incidents/{quote(KEY, safe='')}/actions")
    body = {"action": "acknowledge", "by": "mallory"}
    for token in (None, "wrong-token"):
        refused = http("POST", path, body, token=token)
        assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in refused.text
    assert http("POST", path, b"{not json", token=TOKEN).status == 400
    assert http("POST", path, {"action": "shout", "by": "x"}, token=TOKEN).status == 400
    assert http("POST", path, {"action": "acknowledge"}, token=TOKEN).status == 400
    assert http("POST", path, {"action": "correct_areas", "by": "x", "areas": ["Sales"]}, token=TOKEN).status == 400
    unknown = http("POST", _api(ops, "/incidents/model%3Dnobody%7Cversion%3D1/actions"), body, token=TOKEN)
    assert unknown.status == 404
    assert http("POST", _api(ops, "/silences"), {"matchers": {"a": "b"}, "created_by": "x", "duration_s": 5}).status == 401
    ticket = _incident(ops)["ticket"]  # nothing reached the incident
    assert ticket["actions"] == [] and ticket["acknowledged_by"] is None


def test_an_acknowledged_then_resolved_incident_is_in_history(ops: Cluster) -> None:
    path = _api(ops, f"/incidents/{quote(KEY, safe='')}/actions")

    def act(body: dict[str, Any]) -> dict[str, Any]:
        answer = http("POST", path, body, token=TOKEN)
        assert answer.status == 202, answer.text
        return answer.body

    accepted = act({"action": "acknowledge", "by": "ana", "comment": "looking at the feature pipeline"})
    assert accepted["accepted"]["action"] == "acknowledge" and accepted["incident_id"]
    wait_for(lambda: _incident(ops)["ticket"]["status"] == "acknowledged", 20, "the acknowledgement")
    act({"action": "correct_areas", "by": "ana", "areas": ["Data Operations", "Business"]})
    wait_for(lambda: _incident(ops)["ticket"]["areas"] == ["Data Operations", "Business"], 20, "corrected areas")
    act({"action": "comment", "by": "ana", "comment": "upstream schema change"})
    act({"action": "resolve", "by": "ana", "comment": "fixed upstream"})
    wait_for(lambda: _incident(ops)["ticket"]["status"] == "resolved", 20, "the resolution")
    again = http("POST", path, {"action": "acknowledge", "by": "ana"}, token=TOKEN)
    assert again.status == 409

    one = _incident(ops)
    statuses = [r["status"] for r in one["revisions"]]
    assert statuses[0] == "triggered" and "acknowledged" in statuses and statuses[-1] == "resolved"
    assert [(a["action"], a["by"]) for a in one["ticket"]["actions"]] == [
        ("acknowledge", "ana"), ("correct_areas", "ana"), ("comment", "ana"), ("resolve", "ana")]

    history = http("GET", _api(ops, f"/incidents?state=resolved&model={MODEL}")).body["incidents"]
    assert [(t["dedup_key"], t["status"], t["acknowledged_by"]) for t in history] == [(KEY, "resolved", "ana")]
    assert history[0]["ended_at"] is not None
    assert http("GET", _api(ops, f"/incidents?state=open&model={MODEL}")).body["incidents"] == []
    acknowledged_ever = http("GET", _api(ops, "/incidents?status=resolved&priority=" + history[0]["priority"]))
    assert KEY in {t["dedup_key"] for t in acknowledged_ever.body["incidents"]}

    actions = by_label(scrape(ops.urls[0]), "emlops_operator_actions_total", "action")
    assert actions == {"acknowledge": 1, "correct_areas": 1, "comment": 1, "resolve": 1}


def test_silences_are_created_listed_and_expired(ops: Cluster) -> None:
    assert http("POST", _api(ops, "/silences"), {"matchers": {}, "created_by": "ana", "duration_s": 60},
                token=TOKEN).status == 400
    assert http("POST", _api(ops, "/silences"), {"matchers": {"source": "~("}, "created_by": "ana",
                                                 "duration_s": 60}, token=TOKEN).status == 400
    created = http("POST", _api(ops, "/silences"), {"matchers": {"source": SOURCE}, "created_by": "ana",
                                                    "duration_s": 600, "comment": "maintenance"}, token=TOKEN)
    assert created.status == 202, created.text
    silence = created.body["accepted"]
    assert silence["active"] and silence["expires_at"] - silence["starts_at"] == pytest.approx(600)

    def listed() -> bool:
        return silence["id"] in {x["id"] for x in http("GET", _api(ops, "/silences")).body["silences"]}

    wait_for(listed, 20, "the silence in the list")
    one = http("GET", _api(ops, f"/silences/{silence['id']}"))
    assert one.status == 200 and one.body["matchers"] == {"source": SOURCE} and one.body["comment"] == "maintenance"
    assert http("DELETE", _api(ops, f"/silences/{silence['id']}")).status == 401
    assert http("DELETE", _api(ops, "/silences/s-nothing"), token=TOKEN).status == 404
    assert http("DELETE", _api(ops, f"/silences/{silence['id']}"), token=TOKEN).status == 202
    wait_for(lambda: http("GET", _api(ops, f"/silences/{silence['id']}")).status == 404, 20, "the expiry")


def test_answers_match_the_openapi_document(ops: Cluster) -> None:
    document = http("GET", _api(ops, "/openapi.json")).body
    created = http("POST", _api(ops, "/silences"), {"matchers": {"model": "~ops-.*"}, "created_by": "ana",
                                                    "until_resolved": True}, token=TOKEN)
    assert created.status == 202, created.text
    wait_for(lambda: http("GET", _api(ops, "/silences")).body["silences"], 20, "a silence to describe")

    def check(path: str, schema: str, status: int = 200) -> None:
        answer = http("GET", _api(ops, path))
        assert answer.status == status, answer.text
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema}", "components": document["components"]})
        validator.validate(answer.body)

    check("/incidents", "IncidentList")
    check(f"/incidents/{quote(KEY, safe='')}", "Incident")
    check("/incidents/nothing", "Error", 404)
    check("/incidents?limit=0", "Error", 400)
    for path, item in (("/models", "Model"), ("/services", "Service"), ("/silences", "Silence"),
                       ("/workers", "WorkerSummary")):
        answer = http("GET", _api(ops, path))
        items = answer.body[path.strip("/")]
        assert items, path
        for entry in items:
            jsonschema.Draft202012Validator(
                {"$ref": f"#/components/schemas/{item}", "components": document["components"]}).validate(entry)
    for path in document["paths"]:
        assert path.startswith(("/api/v1/", "/metrics", "/health", "/ready", "/dashboard/")), path
