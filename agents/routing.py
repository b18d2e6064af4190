"""Turns detections into incident revisions on the incidents topic, with state in a changelogged table.

The detections topic also carries ``tick`` commands: Faust only lets a table change inside stream
processing, so the timer that notices quiet or rate-limited incidents asks this agent, through the topic,
to act on them. Operator actions will travel the same way.
"""

from __future__ import annotations

import logging
import time

from agents.intake import dead_letter
from agents.metrics import metrics
from app.faust_app import app, detections_topic, incidents_table, incidents_topic, routing_rules, settings
from models import codec
from models.routing import IncidentState, route, tick
from models.schema import Detection, InvalidEvent, Ticket

log = logging.getLogger(__name__)


async def publish(ticket: Ticket) -> None:
    metrics.tickets[ticket.status.value] += 1
    await incidents_topic.send(key=ticket.dedup_key.encode(), value=codec.dumps(ticket.to_dict()))


@app.agent(detections_topic)
async def route_detections(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        key = event.message.key.decode() if event.message.key else ""
        try:
            message = codec.loads(event.value)
            if not isinstance(message, dict):
                raise InvalidEvent("a detection must be a JSON object")
            stored = incidents_table.get(key)
            state = IncidentState.from_dict(stored) if stored else None
            now = time.time()
            if message.get("type") == "tick":
                if state is None:
                    continue
                state, ticket = tick(state, routing_rules, now)
            else:
                state, ticket = route(Detection.from_dict(message), state, routing_rules, now)
        except (InvalidEvent, ValueError, KeyError) as exc:
            await dead_letter(event, f"bad detection: {exc}")
            continue
        incidents_table[key] = state.to_dict()
        if ticket is not None:
            await publish(ticket)


@app.timer(interval=settings.tick_interval_s)
async def request_ticks() -> None:
    now = time.time()
    for key, stored in list(incidents_table.items()):
        state = IncidentState.from_dict(stored)
        if tick(state, routing_rules, now)[1] is not None:
            await detections_topic.send(key=key.encode(), value=codec.dumps({"type": "tick"}))
