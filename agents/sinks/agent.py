"""Reads every ticket revision on the incidents topic and hands it to the sinks whose route it matches.

Only registered when the configuration file has ``[[sinks]]``. Each sink delivers on its own, so a slow or
absent receiver delays only itself; a revision it gives up on goes to the dead-letter topic with the reason
and the sink's name (``emlops.sink``), and every outcome is counted (``emlops_sink_deliveries``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

import aiohttp
import faust
from prometheus_client import Counter as PromCounter

from agents.metrics import metrics
from agents.sinks.delivery import Delivery, SinkStats, SinkWorker
from app.config import owners
from app.faust_app import app, dead_letter_topic, incidents_topic, settings
from models import codec
from models.adapters.delivery import pages
from models.schema import InvalidEvent

log = logging.getLogger(__name__)

_deliveries = PromCounter("emlops_sink_deliveries", "Ticket deliveries to sinks, by sink and outcome "
                          "(delivered, retried, failed, dropped).", ["sink", "outcome"], registry=metrics.registry)
stats = SinkStats(lambda sink, outcome: _deliveries.labels(sink, outcome).inc())
_owners = owners(settings.catalogue)


def decode_ticket(value: bytes | None) -> Mapping[str, Any] | None:
    """A ticket document; a structured-mode CloudEvent is unwrapped; None for a tombstone."""
    if value is None or len(value) == 0:
        return None
    doc = codec.loads(value)
    if isinstance(doc, dict) and "specversion" in doc and isinstance(doc.get("data"), dict):
        doc = doc["data"]
    if not isinstance(doc, dict) or not {"dedup_key", "status", "labels", "areas"} <= doc.keys():
        raise InvalidEvent("not a ticket revision (needs dedup_key, status, labels and areas)")
    return doc


def extra_labels(ticket: Mapping[str, Any]) -> dict[str, str]:
    """What the catalogue adds to a delivery: the owning team of the model or source."""
    labels = ticket.get("labels", {})
    for name in (labels.get("model", ""), labels.get("source", "")):
        for part in name.split(","):
            if part in _owners:
                return {"owner": _owners[part]}
    return {}


async def give_up(worker: SinkWorker, delivery: Delivery, reason: str) -> None:
    message = delivery.context
    metrics.dead_lettered[message.topic] += 1
    await dead_letter_topic.send(
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=[
            ("emlops.reason", f"sink {worker.spec.name}: {reason}".encode()),
            ("emlops.sink", worker.spec.name.encode()),
            ("emlops.sink.attempts", str(delivery.attempts).encode()),
            ("emlops.origin.topic", message.topic.encode()),
            ("emlops.origin.partition", str(message.partition).encode()),
            ("emlops.origin.offset", str(message.offset).encode()),
        ],
    )


workers = [SinkWorker(spec, give_up, stats) for spec in settings.sinks]


async def _deliver_tickets(stream: faust.StreamT[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.ensure_future(worker.run(session)) for worker in workers]
        try:
            async for event in stream.events():
                try:
                    ticket = decode_ticket(event.value)
                    if ticket is None or not pages(ticket):
                        continue
                    for worker in workers:
                        if worker.spec.route.matches(ticket):
                            worker.offer(ticket, extra_labels(ticket), context=event.message)
                except (InvalidEvent, KeyError, TypeError, ValueError) as exc:
                    log.warning("sinks: skipped %s[%s]@%s: %s", event.message.topic, event.message.partition,
                                event.message.offset, exc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


if workers:
    deliver_tickets = app.agent(incidents_topic, name="deliver_tickets")(_deliver_tickets)
