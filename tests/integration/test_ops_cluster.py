"""Two workers of one app share the partitions: whichever worker a request reaches, an incident is
answered by the worker that owns it, lists hold every worker's incidents once, and an action sent to the
wrong worker still reaches the incident. Reads need the token here (EMLOPS_API_READS=token)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from tests.integration.kafka_io import produce
from tests.integration.ops_support import TOKEN, Cluster, http, ops_workers, scrape, wait_for

SOURCES = [f"c2-src-{i}" for i in range(8)]


def _detection(source: str) -> tuple[str, dict[str, Any]]:
    return f"source={source}", {
        "type": "detection", "kind": "infra_anomaly", "entity": {"source": source, "metric": "cpu"},
        "score": 0.9, "severity": "critical", "event_time": time.time(), "detector": "test",
        "evidence": {"z": 9.0}, "summary": f"cpu on {source} is anomalous",
    }


@pytest.fixture(scope="module")
def pair(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = {"EMLOPS_API_READS": "token", "EMLOPS_GROUP_INTERVAL_S": "3600", "EMLOPS_RESOLVE_AFTER_S": "3600"}
    with ops_workers(bootstrap, tmp_path_factory.mktemp("ops-cluster"), count=2, env=env) as cluster:
        s = cluster.settings
        asyncio.run(produce(s, s.topics.detections, [_detection(source) for source in SOURCES]))
        yield cluster


def _open(cluster: Cluster, url: str) -> dict[str, Any] | None:
    answer = http("GET", f"{url}/api/v1/incidents?state=open", token=TOKEN)
    keys = {t["dedup_key"] for t in answer.body["incidents"]}
    return answer.body if keys >= {f"source={s}" for s in SOURCES} else None


def test_each_worker_lists_every_incident_once_each_answered_by_its_owner(pair: Cluster) -> None:
    lists = [wait_for(lambda: _open(pair, url), 120, f"all incidents listed by {url}") for url in pair.urls]
    owners = [{t["dedup_key"]: t["worker"] for t in listed["incidents"]} for listed in lists]
    assert owners[0] == owners[1]
    assert set(owners[0].values()) == set(pair.urls), "both workers should own some of the eight keys"
    for listed, url in zip(lists, pair.urls):
        assert listed["partial"] is False
        assert {w["url"] for w in listed["workers"]} == set(pair.urls) and all(w["ok"] for w in listed["workers"])
        assert len(listed["incidents"]) == len(SOURCES) == listed["matched"]

    # Each worker's gauges count only the incidents it owns: together, each incident once.
    owned = Counter(owners[0].values())
    for url in pair.urls:
        samples = scrape(url)
        gauge = sum(v for (name, labels), v in samples.items()
                    if name == "emlops_open_incidents" and dict(labels)["area"] == "Technical Operations")
        assert gauge == owned[url], url


def test_a_request_reaching_the_wrong_worker_is_answered_by_the_right_one(pair: Cluster) -> None:
    listed = wait_for(lambda: _open(pair, pair.urls[0]), 120, "all incidents listed")
    for ticket in listed["incidents"]:
        owner = ticket["worker"]
        other = next(u for u in pair.urls if u != owner)
        answer = http("GET", f"{other}/api/v1/incidents/{quote(ticket['dedup_key'], safe='')}", token=TOKEN)
        assert answer.status == 200, answer.text
        assert answer.headers["X-Emlops-Worker"] == owner
        assert answer.headers["X-Emlops-Routed-From"] == other
        assert answer.body["worker"] == owner and answer.body["ticket"]["incident_id"] == ticket["incident_id"]
        direct = http("GET", f"{owner}/api/v1/incidents/{quote(ticket['dedup_key'], safe='')}", token=TOKEN)
        assert direct.headers["X-Emlops-Worker"] == owner and "X-Emlops-Routed-From" not in direct.headers
        assert direct.body["ticket"] == answer.body["ticket"]

    missing = http("GET", f"{pair.urls[0]}/api/v1/incidents/{quote('source=nowhere', safe='')}", token=TOKEN)
    assert missing.status == 404


def test_an_action_sent_to_the_wrong_worker_reaches_the_incident(pair: Cluster) -> None:
    listed = wait_for(lambda: _open(pair, pair.urls[0]), 120, "all incidents listed")
    ticket = listed["incidents"][0]
    owner = ticket["worker"]
    other = next(u for u in pair.urls if u != owner)
    key = quote(ticket["dedup_key"], safe="")
    assert http("POST", f"{other}/api/v1/incidents/{key}/actions", {"action": "acknowledge", "by": "ops"}).status == 401
    accepted = http("POST", f"{other}/api/v1/incidents/{key}/actions",
                    {"action": "acknowledge", "by": "ops", "comment": "from the other worker"}, token=TOKEN)
    assert accepted.status == 202 and accepted.headers["X-Emlops-Worker"] == owner, accepted.text

    def acknowledged() -> bool:
        one = http("GET", f"{other}/api/v1/incidents/{key}", token=TOKEN).body
        return one["ticket"]["status"] == "acknowledged" and one["ticket"]["acknowledged_by"] == "ops"

    wait_for(acknowledged, 20, "the acknowledgement, read through the other worker")


def test_reads_need_the_token_under_the_token_policy(pair: Cluster) -> None:
    for url in pair.urls:
        for path in ("/api/v1/incidents", "/api/v1/models", "/api/v1/workers", "/api/v1/incidents/source%3Dx"):
            answer = http("GET", f"{url}{path}")
            assert answer.status == 401, (url, path, answer.text)
        assert http("GET", f"{url}/health").status == 200  # probes and scrapes stay open
        assert http("GET", f"{url}/metrics").status == 200
