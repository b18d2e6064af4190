"""Sinks: Alertmanager webhook v4 and PagerDuty Events API v2 payloads for each ticket status, routes,
retry decisions, and a sender delivering to a real local HTTP receiver, including after it was down."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from agents.sinks.delivery import Delivery, SinkStats, SinkWorker
from app.broker import free_port
from app.config import SinkSpec
from models.adapters import alertmanager, pagerduty
from models.adapters.delivery import FAIL, OK, RETRY, Backoff, Route, classify, pages
from models.routing import load_rules, route, tick
from models.schema import Detection, DetectionKind, Severity, TicketStatus

RULES = load_rules()


def tickets() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A real incident's revisions from the router: triggered, acknowledged-like copy, resolved."""
    detection = Detection(DetectionKind.LATENCY_SPIKE, {"model": "fraud-detector", "version": "7"}, 0.9,
                          Severity.CRITICAL, 1764250000.0, "adwin_mean_shift", {"effect_size": 4.2},
                          "latency of fraud-detector v7 rose from 18 ms to 240 ms")
    state, opened = route(detection, None, RULES, now=1764250001.0)
    _, resolved = tick(state, RULES, now=1764250001.0 + RULES.resolve_after_s)
    assert opened is not None and resolved is not None and resolved.status == TicketStatus.RESOLVED
    acknowledged = replace(opened, status=TicketStatus.ACKNOWLEDGED, revision=2)
    return opened.to_dict(), acknowledged.to_dict(), resolved.to_dict()


# --- payloads -------------------------------------------------------------------------------------------------


def test_alertmanager_payload_has_the_version_4_shape_and_one_alert_per_incident() -> None:
    opened, _, resolved = tickets()
    body = alertmanager.webhook_payload(opened, "oncall", "http://emlops:6066", {"owner": "risk-ml"})
    assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                         "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert (body["version"], body["status"], body["receiver"], body["truncatedAlerts"]) == ("4", "firing", "oncall", 0)
    [alert] = body["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["labels"] == {
        "model": "fraud-detector", "version": "7", "alertname": "latency_spike", "severity": "critical",
        "priority": opened["priority"], "area": "Technical Operations", "areas": "Technical Operations,User",
        "dedup_key": "model=fraud-detector|version=7", "owner": "risk-ml"}
    assert alert["annotations"]["summary"] == opened["summary"]
    assert alert["annotations"]["runbook_url"] == "https://emlops.dev/runbooks/latency"
    assert alert["startsAt"] == "2025-11-27T13:26:41.000Z" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == opened["incident_id"]
    done = alertmanager.webhook_payload(resolved, "oncall")["alerts"][0]
    assert done["status"] == "resolved" and done["fingerprint"] == alert["fingerprint"]
    assert done["endsAt"] != alertmanager.ZERO_TIME
    json.dumps(body)  # plain JSON


def test_pagerduty_events_follow_the_ticket_lifecycle() -> None:
    opened, acknowledged, resolved = tickets()
    trigger = pagerduty.event(opened, "R0UT1NGKEY", client_url="http://emlops:6066")
    assert (trigger["routing_key"], trigger["event_action"], trigger["dedup_key"]) == (
        "R0UT1NGKEY", "trigger", "model=fraud-detector|version=7")
    p = trigger["payload"]
    assert p["severity"] == "critical" and p["source"] == "model fraud-detector v7"
    assert p["summary"].startswith(f"[{opened['priority']}] latency of fraud-detector")
    assert p["class"] == "latency_spike" and p["group"] == "Technical Operations"
    assert p["custom_details"]["areas"] == ["Technical Operations", "User"]
    assert p["custom_details"]["latest_evidence"] == {"effect_size": 4.2}
    assert trigger["links"] == [{"href": "https://emlops.dev/runbooks/latency", "text": "Runbook"}]
    assert pagerduty.event(acknowledged, "K") == {"routing_key": "K", "event_action": "acknowledge",
                                                  "dedup_key": "model=fraud-detector|version=7"}
    assert pagerduty.event(resolved, "K")["event_action"] == "resolve" and "payload" not in pagerduty.event(resolved, "K")


def test_pagerduty_limits_are_kept() -> None:
    opened, _, _ = tickets()
    long = {**opened, "summary": "x" * 5000, "dedup_key": "k" * 300}
    event = pagerduty.event(long, "K")
    assert len(event["payload"]["summary"]) == 1024
    assert len(event["dedup_key"]) <= 255 and event["dedup_key"] == pagerduty.event(long, "K")["dedup_key"]


# --- routes and retry decisions -------------------------------------------------------------------------------


@pytest.mark.parametrize("route_,matched", [
    (Route(), True),
    (Route(areas=frozenset({"User"})), True),
    (Route(areas=frozenset({"Business"})), False),
    (Route(priorities=frozenset({"P1", "P2"})), True),
    (Route(priorities=frozenset({"P3", "P4"})), False),
    (Route(statuses=frozenset({"resolved"})), False),
    (Route(labels={"model": "fraud-detector"}), True),
    (Route(labels={"model": "churn"}), False),
])
def test_routes_select_tickets_by_area_priority_status_and_labels(route_: Route, matched: bool) -> None:
    opened, _, _ = tickets()
    assert opened["priority"] == "P2"  # critical on the default tier 2
    assert route_.matches(opened) is matched


def test_route_rejects_unknown_priorities() -> None:
    with pytest.raises(ValueError, match="unknown priorities"):
        Route(priorities=frozenset({"urgent"}))


@pytest.mark.parametrize("status,outcome", [
    (200, OK), (202, OK), (204, OK), (None, RETRY), (408, RETRY), (429, RETRY), (500, RETRY), (503, RETRY),
    (400, FAIL), (401, FAIL), (403, FAIL), (404, FAIL), (413, FAIL),
])
def test_which_outcomes_are_retried(status: int | None, outcome: str) -> None:
    assert classify(status) == outcome


def test_backoff_grows_is_capped_and_gives_up() -> None:
    b = Backoff(initial_s=1, max_s=8, multiplier=2, max_attempts=6, give_up_after_s=100)
    assert [b.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert not b.gives_up(1, 0) and b.gives_up(6, 0)
    assert b.gives_up(3, 97)  # the next wait (4 s) would pass the deadline
    with pytest.raises(ValueError):
        Backoff(initial_s=5, max_s=1)


# --- the sender against a real local receiver -----------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every body it receives and answers with scripted statuses."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answered in order, then 202
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = self.statuses.pop(0) if self.statuses else 202
        if status < 300:
            self.received.append(body)
        return web.json_response({"status": "success" if status < 300 else "error"}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def spec(kind: str, port: int, **kw: Any) -> SinkSpec:
    backoff = kw.pop("backoff", Backoff(initial_s=0.05, max_s=0.2, max_attempts=100, give_up_after_s=30))
    return SinkSpec(name=f"test-{kind}", type=kind, url=f"http://127.0.0.1:{port}/hook", routing_key="K",
                    backoff=backoff, timeout_s=2.0, **kw)


async def _run(worker: SinkWorker, scenario: Any) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        task = asyncio.ensure_future(worker.run(session))
        try:
            await asyncio.wait_for(scenario(), timeout=30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("kind", ["alertmanager", "pagerduty"])
def test_deliveries_wait_for_a_receiver_that_was_down_and_keep_their_order(kind: str) -> None:
    opened, _, resolved = tickets()
    port = free_port()
    receiver, stats, given_up = Receiver(port), SinkStats(), []

    async def give_up(worker: SinkWorker, delivery: Delivery, reason: str) -> None:
        given_up.append(reason)

    worker = SinkWorker(spec(kind, port), give_up, stats)

    async def scenario() -> None:
        assert worker.offer(opened) and worker.offer(resolved)
        await asyncio.sleep(1.0)  # nobody listens: connection refused, retried with backoff
        assert receiver.received == []
        await receiver.start()
        try:
            await worker.drain()
        finally:
            await receiver.stop()

    asyncio.run(_run(worker, scenario))
    assert given_up == []
    counts = stats.snapshot()[f"test-{kind}"]
    assert counts["delivered"] == 2 and counts["retried"] >= 3
    if kind == "alertmanager":
        assert [b["status"] for b in receiver.received] == ["firing", "resolved"]
        assert receiver.received[0]["alerts"][0]["fingerprint"] == receiver.received[1]["alerts"][0]["fingerprint"]
    else:
        assert [b["event_action"] for b in receiver.received] == ["trigger", "resolve"]
        assert {b["dedup_key"] for b in receiver.received} == {opened["dedup_key"]}


def test_recoverable_statuses_are_retried_and_others_given_up_at_once() -> None:
    opened, _, resolved = tickets()
    port = free_port()
    receiver, stats, given_up = Receiver(port), SinkStats(), []
    receiver.statuses = [503, 429, 202, 400]

    async def give_up(worker: SinkWorker, delivery: Delivery, reason: str) -> None:
        given_up.append((delivery.ticket["status"], delivery.attempts, reason))

    worker = SinkWorker(spec("pagerduty", port), give_up, stats)

    async def scenario() -> None:
        await receiver.start()
        try:
            worker.offer(opened)
            worker.offer(resolved)
            await worker.drain()
        finally:
            await receiver.stop()

    asyncio.run(_run(worker, scenario))
    assert [b["event_action"] for b in receiver.received] == ["trigger"]
    assert stats.snapshot()["test-pagerduty"] == {"retried": 2, "delivered": 1, "failed": 1}
    [(status, attempts, reason)] = given_up
    assert status == "resolved" and attempts == 1 and reason.startswith("not retryable: HTTP 400")


def test_a_receiver_that_stays_down_is_given_up_after_the_backoff_budget() -> None:
    opened, _, _ = tickets()
    stats, given_up = SinkStats(), []

    async def give_up(worker: SinkWorker, delivery: Delivery, reason: str) -> None:
        given_up.append((delivery.attempts, reason))

    worker = SinkWorker(spec("alertmanager", free_port(), backoff=Backoff(initial_s=0.01, max_s=0.02, max_attempts=3)),
                        give_up, stats)

    async def scenario() -> None:
        worker.offer(opened)
        await worker.drain()

    asyncio.run(_run(worker, scenario))
    [(attempts, reason)] = given_up
    assert attempts == 3 and "gave up after 3 attempt(s)" in reason and "ClientConnectorError" in reason
    assert stats.snapshot()["test-alertmanager"] == {"retried": 2, "failed": 1}


def test_a_full_queue_gives_up_at_once_instead_of_blocking_the_stream() -> None:
    opened, _, _ = tickets()
    stats, given_up = SinkStats(), []

    async def give_up(worker: SinkWorker, delivery: Delivery, reason: str) -> None:
        given_up.append(reason)

    async def scenario() -> None:
        worker = SinkWorker(spec("alertmanager", free_port(), queue_size=2), give_up, stats)
        assert [worker.offer(opened) for _ in range(3)] == [True, True, False]  # nobody is consuming the queue
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert given_up == ["sink queue full (2)"] and stats.snapshot() == {"test-alertmanager": {"dropped": 1}}


def test_a_failing_give_up_callback_does_not_stop_the_sink() -> None:
    opened, _, resolved = tickets()
    port = free_port()
    receiver, stats = Receiver(port), SinkStats()
    receiver.statuses = [400]

    async def give_up(worker: SinkWorker, delivery: Delivery, reason: str) -> None:
        raise RuntimeError("dead-letter topic unavailable")

    worker = SinkWorker(spec("alertmanager", port), give_up, stats)

    async def scenario() -> None:
        await receiver.start()
        try:
            worker.offer(opened)  # refused with 400: given up, and the give-up itself fails
            worker.offer(resolved)  # still delivered afterwards
            await worker.drain()
        finally:
            await receiver.stop()

    asyncio.run(_run(worker, scenario))
    assert [b["status"] for b in receiver.received] == ["resolved"]
    assert stats.snapshot()["test-alertmanager"] == {"failed": 1, "delivered": 1}


@pytest.mark.parametrize("ticket, expected", [
    ({"status": "triggered"}, True),
    ({"status": "updated", "silenced_by": ["maintenance"]}, False),
    ({"status": "triggered", "caused_by": [{"incident_id": "p", "dedup_key": "source=etl", "summary": "stale"}]},
     False),
    ({"status": "resolved", "silenced_by": ["maintenance"]}, True),
    ({"status": "acknowledged", "silenced_by": [], "caused_by": []}, True),
])
def test_silenced_and_explained_revisions_page_nobody_but_resolutions_go_out(ticket, expected):
    assert pages(ticket) is expected
