"""The shared shape of the input agents: decode a batch once, feed the monitors, send only detections.

A message that cannot be decoded, or that makes a monitor fail, goes to the dead-letter topic with the
reason and its origin in headers; the agent carries on with the next one.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator, Sequence

import faust
from prometheus_client.core import GaugeMetricFamily

from agents.checkpoints import Checkpointed
from agents.metrics import metrics
from app.config import build_input_adapters
from app.faust_app import dead_letter_topic, detections_topic, routing_rules, settings
from models import codec
from models.schema import Detection, InvalidEvent

log = logging.getLogger(__name__)
# Extra input topics speak other formats (configuration file [[inputs]]); their adapters translate each
# message into native events (none while half of a request/response pair waits, several for a batch).
input_adapters = build_input_adapters(settings)


class _AdapterState:
    """``emlops_adapter_state{topic, format, counter}``: pairs waiting, paired, expired, evicted, skipped..."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("emlops_adapter_state", "Counters and sizes of the input adapters, by topic.",
                                   labels=["topic", "format", "counter"])
        for topic, adapter in input_adapters.items():
            for counter, value in adapter.stats().items():
                family.add_metric([topic, adapter.format, counter], value)
        yield family


if input_adapters:
    metrics.registry.register(_AdapterState())


async def dead_letter(event: faust.types.EventT, reason: str) -> None:
    message = event.message
    metrics.dead_lettered[message.topic] += 1
    log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
    await dead_letter_topic.send(
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=[
            ("emlops.reason", reason.encode()),
            ("emlops.origin.topic", message.topic.encode()),
            ("emlops.origin.partition", str(message.partition).encode()),
            ("emlops.origin.offset", str(message.offset).encode()),
        ],
    )


async def send_detections(detections: Iterable[Detection]) -> None:
    for detection in detections:
        metrics.detections[detection.kind.value] += 1
        dedup_key, _ = routing_rules.group(detection)
        await detections_topic.send(
            key=dedup_key.encode(), value=codec.dumps({"type": "detection", **detection.to_dict()})
        )


async def process_batch(
    stream: faust.StreamT,
    events: Sequence[faust.types.EventT],
    decode: Callable[[Any], Any],
    watcher: Checkpointed,
) -> None:
    """Decode and observe a batch; detections are sent, and the events acknowledged at the next checkpoint.

    The whole batch runs under the watcher's lock: a checkpoint (the timer's too) sees either none or all
    of a batch, both in the saved state and in the acknowledgements."""
    async with watcher.lock:  # and only then asks what is accepted: a revocation may have come first
        events = [event for event in events if watcher.accepting(event)]
        found: list[Detection] = []
        for event in events:
            metrics.consumed[event.message.topic] += 1
            adapter = input_adapters.get(event.message.topic)
            try:
                if adapter is None:
                    records = [decode(codec.loads(event.value))]
                else:
                    records = adapter.translate(event.value, event.message.headers, event.message.timestamp or 0.0)
            except InvalidEvent as exc:
                metrics.decode_failures[event.message.topic] += 1
                await dead_letter(event, str(exc))
                continue
            try:
                for record in records:
                    found.extend(watcher.observe(record, event))
            except Exception as exc:  # a monitor bug must cost one event, not the worker
                log.exception("monitor failed on %s[%s]@%s", event.message.topic, event.message.partition,
                              event.message.offset)
                await dead_letter(event, f"internal error: {type(exc).__name__}: {exc}")
        await send_detections(found)
        watcher.hold(stream, events)
    await watcher.maybe_checkpoint()
