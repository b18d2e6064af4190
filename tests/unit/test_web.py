"""The ops views' pure parts: access rules, incident filters and merging, time series, key ownership,
the OpenAPI document and the shipped dashboard files."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.web.auth import Access, bearer, is_loopback
from agents.web.cluster import owner_of, partition_of, same_worker
from agents.web.queries import IncidentFilter, entries, merge, parse_time, select, silence_view
from agents.web.series import SeriesStore, Track, numeric_fields

# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("remote, expected", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.1.2.3", False), ("192.168.0.7", False), ("2001:db8::1", False), (None, False), ("", False), ("junk", False),
])
def test_loopback_addresses(remote: str | None, expected: bool) -> None:
    assert is_loopback(remote) is expected


def test_bearer_token_is_read_from_the_authorization_header_only() -> None:
    assert bearer({"Authorization": "Bearer abc"}) == "abc"
    assert bearer({"Authorization": "bearer  abc "}) == "abc"
    assert bearer({"Authorization": "Basic abc"}) is None
    assert bearer({"Authorization": "Bearer "}) is None
    assert bearer({}) is None


def test_reads_are_open_on_loopback_and_need_the_token_elsewhere() -> None:
    access = Access(token="s3cret")
    assert access.read("127.0.0.1", {}).allowed
    denied = access.read("10.0.0.5", {})
    assert (denied.allowed, denied.status) == (False, 401)
    assert access.read("10.0.0.5", {"Authorization": "Bearer s3cret"}).allowed
    assert not access.read("10.0.0.5", {"Authorization": "Bearer wrong"}).allowed
    assert Access(token="s3cret", reads="open").read("10.0.0.5", {}).allowed
    assert not Access(token="s3cret", reads="token").read("127.0.0.1", {}).allowed


def test_actions_need_the_token_and_are_off_without_one() -> None:
    access = Access(token="s3cret")
    assert access.act({"Authorization": "Bearer s3cret"}).allowed
    assert access.act({}).status == 401
    assert access.act({"Authorization": "Bearer s3cre"}).status == 401
    off = Access(token=None).act({"Authorization": "Bearer anything"})
    assert (off.allowed, off.status) == (False, 403)


def test_the_token_is_not_in_the_repr_and_a_bad_policy_is_refused() -> None:
    assert "s3cret" not in repr(Access(token="s3cret"))
    with pytest.raises(ValueError, match="read access"):
        Access(reads="everyone")


# --- incident queries -------------------------------------------------------------------------------


def _ticket(incident_id: str, status: str = "triggered", **over: Any) -> dict[str, Any]:
    ticket = {
        "incident_id": incident_id, "dedup_key": f"model={incident_id}|version=1", "revision": 1, "status": status,
        "severity": "warning", "priority": "P3", "areas": ["Data Operations"], "primary_area": "Data Operations",
        "summary": f"feature drift on {incident_id}", "labels": {"model": incident_id, "version": "1"},
        "kinds": ["feature_drift"], "started_at": 100.0, "last_seen": 200.0, "ended_at": None, "occurrences": 1,
        "silenced_by": [],
    }
    ticket.update(over)
    return ticket


def _stored(ticket: dict[str, Any], previous: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"ticket": ticket, "revisions": [ticket], "previous": list(previous)}


def test_entries_list_the_current_incident_then_earlier_ones_newest_first() -> None:
    old1 = _ticket("a0", "resolved", last_seen=10.0)
    old2 = _ticket("a1", "resolved", last_seen=20.0)
    found = list(entries(_stored(_ticket("a2"), [old1, old2])))
    assert [(e["incident_id"], e["current"]) for e in found] == [("a2", True), ("a1", False), ("a0", False)]
    assert found[0]["revision_count"] == 1


@pytest.mark.parametrize("query, expected", [
    ({}, ["b", "a", "c"]),
    ({"state": "open"}, ["b", "a"]),
    ({"state": "resolved"}, ["c"]),
    ({"status": "acknowledged,resolved"}, ["a", "c"]),
    ({"area": "Business"}, ["b"]),
    ({"area": "Business,User"}, ["b"]),
    ({"priority": "P1"}, ["b"]),
    ({"model": "a"}, ["a"]),
    ({"source": "api"}, ["c"]),
    ({"kind": "infra_anomaly"}, ["c"]),
    ({"q": "DRIFT ON B"}, ["b"]),
    ({"since": "250"}, ["b"]),
    ({"until": "150"}, ["a", "c"]),
    ({"silenced": "true"}, ["a"]),
    ({"silenced": "false", "state": "open"}, ["b"]),
    ({"limit": "1"}, ["b"]),
])
def test_filters_select_incidents(query: dict[str, str], expected: list[str]) -> None:
    values = [
        _stored(_ticket("a", "acknowledged", silenced_by=["s-1"])),
        _stored(_ticket("b", priority="P1", areas=["Business", "Data Operations"], started_at=200.0, last_seen=300.0)),
        _stored(_ticket("c", "resolved", labels={"source": "api"}, kinds=["infra_anomaly"], last_seen=150.0,
                        ended_at=160.0)),
    ]
    found, matched = select(values, IncidentFilter.from_query(query))
    assert [t["incident_id"] for t in found] == expected
    assert matched >= len(found)


@pytest.mark.parametrize("query, message", [
    ({"state": "closed"}, "'state'"), ({"priority": "P9"}, "'priority'"), ({"area": "Sales"}, "'area'"),
    ({"status": "open"}, "'status'"), ({"limit": "0"}, "'limit'"), ({"limit": "x"}, "'limit'"),
    ({"since": "yesterday"}, "'since'"), ({"until": "2026-01-01T00:00:00"}, "time zone"),
    ({"silenced": "maybe"}, "'silenced'"),
])
def test_bad_filters_name_the_parameter(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IncidentFilter.from_query(query)


def test_times_are_epoch_seconds_or_iso_8601() -> None:
    assert parse_time("1764250000.5", "since") == 1764250000.5
    assert parse_time("2025-11-27T13:26:40Z", "since") == 1764250000.0
    with pytest.raises(ValueError):
        parse_time("nan", "since")


def test_merging_workers_answers_keeps_the_newest_revision_once() -> None:
    a = _ticket("a", last_seen=300.0)
    a2 = {**a, "revision": 2}
    b = _ticket("b", last_seen=200.0)
    merged, total = merge([([a, b], 5), ([a2], 1)], limit=10)
    assert [(t["incident_id"], t["revision"]) for t in merged] == [("a", 2), ("b", 1)]
    assert total == 5
    assert merge([([a, b], 2)], limit=1) == ([a], 2)


def test_a_silence_is_active_between_its_start_and_expiry() -> None:
    silence = {"type": "silence", "id": "s", "starts_at": 10.0, "expires_at": 20.0}
    assert [silence_view(silence, t)["active"] for t in (5, 10, 19.9, 20)] == [False, True, True, False]
    assert silence_view({"id": "s", "starts_at": 0, "expires_at": None}, 1e12)["active"]
    assert "type" not in silence_view(silence, 0)


# --- series -------------------------------------------------------------------------------------------


def test_numeric_fields_take_top_level_numbers_then_one_nested_level_and_skip_the_rest() -> None:
    state = {"model": "m", "predictions": 3, "accuracy": None, "ok": True, "confidence": float("nan"),
             "latency_ms": 12.5, "features": {"b": 2.0, "a": 1, "c": "x"}, "categories": {"plan": {"pro": 0.5}}}
    assert numeric_fields(state, 10) == {"predictions": 3.0, "latency_ms": 12.5, "features.a": 1.0, "features.b": 2.0}
    assert list(numeric_fields(state, 2)) == ["predictions", "latency_ms"]


def test_a_track_is_a_ring_that_keeps_the_newest_points_in_order() -> None:
    track = Track(points=4, max_fields=2)
    for t in range(6):
        track.record(float(t), {"x": t * 10.0, **({"y": 1.0} if t == 5 else {}), "z": 7.0})
    exported = track.export()
    assert exported["t"] == [2.0, 3.0, 4.0, 5.0]
    assert exported["values"]["x"] == [20.0, 30.0, 40.0, 50.0]
    assert exported["values"]["z"] == [7.0, 7.0, 7.0, 7.0]
    assert "y" not in exported["values"]  # two fields at most: x and z came first


def test_a_downsampled_export_ends_on_the_newest_point() -> None:
    track = Track(points=100, max_fields=1)
    for t in range(100):
        track.record(float(t), {"x": float(t)})
    small = track.export(points=10)
    assert len(small["t"]) <= 10 and small["t"][-1] == 99.0
    assert small["values"]["x"] == small["t"]


def test_missing_samples_are_null_and_unsampled_keys_are_dropped() -> None:
    store = SeriesStore(points=5, max_fields=4, max_keys=2)
    store.sample(1.0, [("a", {"x": 1}), ("b", {"x": 2}), ("c", {"x": 3})])  # c: over max_keys
    assert len(store) == 2 and store.export("c") is None
    assert store.wants("a") and not store.wants("c")
    store.sample(2.0, [("a", {"y": 5})])
    assert store.export("a") == {"t": [1.0, 2.0], "values": {"x": [1.0, None], "y": [None, 5.0]}}
    assert store.export("b") is None
    with pytest.raises(ValueError):
        SeriesStore(points=1)


# --- ownership ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"model=churn-model|version=7", b"source=fraud-api", b"", b"\xff\x00x"])
def test_partition_of_matches_kafkas_default_partitioner(key: bytes) -> None:
    partitioner = DefaultPartitioner()
    for partitions in (1, 4, 7):
        assert partition_of(key, partitions) == partitioner(key, list(range(partitions)), list(range(partitions)))


def test_the_owner_is_the_worker_holding_the_partition() -> None:
    distribution = {"http://a:1": {"t": [0, 2]}, "http://b:2": {"t": [1, 3], "other": [0]}}
    assert owner_of(2, "t", distribution) == "http://a:1"
    assert owner_of(1, "t", distribution) == "http://b:2"
    assert owner_of(9, "t", distribution) is None
    assert same_worker("http://127.0.0.1:6066", "http://127.0.0.1:6066/")
    assert not same_worker("http://127.0.0.1:6066", "http://127.0.0.1:6067")


# --- shipped files --------------------------------------------------------------------------------------


def _openapi() -> dict[str, Any]:
    return json.loads((resources.files("agents.web") / "openapi.json").read_text())


def test_the_openapi_document_is_valid_json_schema_and_every_reference_resolves() -> None:
    doc = _openapi()
    assert doc["openapi"].startswith("3.1")
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        node: Any = doc
        for step in ref.removeprefix("#/").split("/"):
            node = node[step]
        assert isinstance(node, dict), ref


def test_the_openapi_document_describes_every_page_the_views_register() -> None:
    from agents.web import views
    from app.faust_app import app

    registered = set(app.web.views)
    ours = {p for p in registered if p.startswith((views.API, "/metrics", "/health", "/ready", "/dashboard/"))}
    assert ours - {"/dashboard/static/{name}"} == set(_openapi()["paths"])


def test_the_dashboard_ships_its_files_and_loads_nothing_from_elsewhere() -> None:
    static = resources.files("agents.web") / "static"
    html = (static / "index.html").read_text()
    assert 'src="static/app.js"' in html and 'href="static/style.css"' in html
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text, name
        assert "//cdn" not in text, name
