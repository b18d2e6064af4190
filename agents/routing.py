"""Turns detections and operator actions into incident revisions on the incidents topic.

Incident state lives in a changelogged table keyed by dedup key, and a table may only change inside
stream processing; so everything that changes an incident travels through the detections topic, keyed
by its dedup key: detections, operator actions (from the web API) and ``tick`` requests from the timer
that notices quiet or rate-limited incidents. One agent, one partition per incident, no races.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote
from typing import Any

from agents.dead_letters import dead_letter
from agents.web.cluster import partition_of
from agents.metrics import metrics
from app.faust_app import (
    app,
    area_feedback_table,
    causes_table,
    dead_letter_topic,
    detections_topic,
    incidents_table,
    incidents_topic,
    routing_rules,
    settings,
    silences_table,
    silences_topic,
)
from models import codec
from models.cloudevents import ticket_headers
from models.learned_routing import AreaLearner, incident_features
from models.routing import (
    IncidentState,
    RoutingContext,
    act,
    cause_record,
    causes_for,
    is_area_correction,
    route,
    tick,
)
from models.schema import ActionKind, Area, Detection, InvalidEvent, OperatorAction, Silence, Ticket, TicketStatus
from models.silences import validate

log = logging.getLogger(__name__)
SOURCE = f"/emlops/{settings.app_id}"
REVISIONS_KEPT = 50
PREVIOUS_KEPT = 10


async def submit_action(action: OperatorAction) -> None:
    """Entry point for the web API: the action reaches the worker that owns the incident."""
    await detections_topic.send(key=action.dedup_key.encode(), value=codec.dumps(action.to_dict()))


async def submit_silence(silence: Silence) -> None:
    validate(silence)
    await silences_topic.send(key=silence.id.encode(), value=codec.dumps(silence.to_dict()))


async def expire_silence(silence_id: str) -> None:
    await silences_topic.send(key=silence_id.encode(), value=codec.dumps({"type": "expire", "id": silence_id}))


class _Learned:
    """This worker's copy of the learned router, caught up from the global feedback table before use."""

    def __init__(self) -> None:
        self.learner = AreaLearner()
        self.applied: set[str] = set()

    def areas_for(self, detection: Detection) -> tuple[Area, ...]:
        if len(area_feedback_table) != len(self.applied):
            for key, feedback in sorted(area_feedback_table.items()):
                if key not in self.applied:
                    self.learner.learn(feedback["features"], (Area(a) for a in feedback["areas"]))
                    self.applied.add(key)
        features = incident_features((detection.kind,), detection.entity)
        return self.learner.extra_areas(features, routing_rules.rule_for(detection.kind).areas)


learned = _Learned()


def _context(detection: Detection) -> RoutingContext:
    silences = tuple(Silence.from_dict(v) for v in silences_table.values())
    return RoutingContext(silences=silences, causes=causes_for(detection, routing_rules, causes_table),
                          learned_areas=learned.areas_for(detection))


def _record_feedback(ticket: Ticket) -> None:
    """A correction teaches the learned router; so does an incident resolved without one (a confirmation)."""
    corrected = is_area_correction(ticket)
    confirmed = ticket.status == TicketStatus.RESOLVED and not any(
        a["action"] == ActionKind.CORRECT_AREAS.value for a in ticket.actions)
    if corrected or confirmed:
        area_feedback_table[f"{ticket.incident_id}:{ticket.revision}"] = {
            "features": incident_features(ticket.kinds, ticket.labels),
            "areas": [a.value for a in ticket.areas],
            "kind": "correction" if corrected else "confirmation",
            "by": ticket.actions[-1]["by"] if corrected else None,
            "at": ticket.last_seen,
        }


def _remember_cause(ticket: Ticket) -> None:
    """Open incidents on a source are kept where every router can see them, to explain model tickets."""
    cause = cause_record(ticket)
    if cause is None:
        return
    source, record = cause
    if record is None:
        causes_table.pop(source, None)
    else:
        causes_table[source] = record


async def publish(ticket: Ticket, event_time: float | None = None) -> None:
    """``event_time``: of the input event behind the detection that caused this revision, if one did."""
    metrics.ticket_published(ticket, event_time)
    _remember_cause(ticket)
    _record_feedback(ticket)
    links = {"incident": f"{settings.web_url}/api/v1/incidents/{quote(ticket.dedup_key, safe='')}",
             "dashboard": f"{settings.web_url}/dashboard/"}
    await incidents_topic.send(key=ticket.dedup_key.encode(), value=codec.dumps({**ticket.to_dict(), "links": links}),
                               headers=ticket_headers(ticket, SOURCE))
    if ticket.status == TicketStatus.RESOLVED:
        for silence_id in ticket.silenced_by:
            stored = silences_table.get(silence_id)
            if stored and stored.get("until_resolved"):
                await expire_silence(silence_id)


def _apply(message: Any, state: IncidentState | None, now: float) -> tuple[IncidentState | None, Ticket | None]:
    if not isinstance(message, dict):
        raise InvalidEvent("a routing message must be a JSON object")
    kind = message.get("type")
    if kind == "tick":
        return (state, None) if state is None else tick(state, routing_rules, now)
    if kind == "action":
        if state is None:
            raise InvalidEvent(f"no incident with dedup key {message.get('dedup_key')!r}")
        return act(state, OperatorAction.from_dict(message), now)
    detection = Detection.from_dict(message)
    return route(detection, state, routing_rules, now, _context(detection))


def _stored(state: IncidentState, ticket: Ticket | None, before: dict[str, Any] | None) -> dict[str, Any]:
    """The table value: routing state plus the history the ops views show (revisions, earlier incidents)."""
    before = before or {}
    revisions, previous = before.get("revisions", []), before.get("previous", [])
    if ticket is not None:
        if ticket.revision == 1 and revisions:  # a new incident under this key: the old one becomes history
            previous = (previous + [revisions[-1]])[-PREVIOUS_KEPT:]
            revisions = []
        revisions = (revisions + [ticket.to_dict()])[-REVISIONS_KEPT:]
    return {**state.to_dict(), "revisions": revisions, "previous": previous}


@app.agent(detections_topic)
async def route_detections(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        key = event.message.key or b""
        try:
            stored = incidents_table.get(key)
            message = codec.loads(event.value)
            state, ticket = _apply(message, IncidentState.from_dict(stored) if stored else None, time.time())
        except (InvalidEvent, ValueError, KeyError) as exc:
            await dead_letter(dead_letter_topic.send, event.message, f"bad routing message: {exc}")
            continue
        if state is not None:
            incidents_table[key] = _stored(state, ticket, stored)
        if ticket is not None:
            by_detection = message.get("type") not in ("tick", "action") and ticket.detections
            await publish(ticket, ticket.detections[-1]["event_time"] if by_detection else None)


@app.agent(silences_topic)
async def store_silences(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        try:
            message = codec.loads(event.value)
            if isinstance(message, dict) and message.get("type") == "expire":
                silences_table.pop(str(message.get("id")), None)
                continue
            silence = Silence.from_dict(message)
            validate(silence)
        except (InvalidEvent, ValueError) as exc:
            await dead_letter(dead_letter_topic.send, event.message, f"bad silence: {exc}")
            continue
        silences_table[silence.id] = silence.to_dict()


@app.timer(interval=settings.tick_interval_s)
async def request_ticks() -> None:
    """Ticks for the incidents this worker owns: the table also holds standby copies of other workers'
    partitions, whose owners tick them."""
    now = time.time()
    try:
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == detections_topic.get_topic_name()}
    except Exception:  # no assignment yet
        return
    for key, stored in list(incidents_table.items()):
        if partition_of(key, settings.partitions) not in owned:
            continue
        if tick(IncidentState.from_dict(stored), routing_rules, now)[1] is not None:
            await detections_topic.send(key=key, value=codec.dumps({"type": "tick"}))
