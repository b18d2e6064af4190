"""KServe and Seldon payload logs: request and response CloudEvents, paired by id into prediction events.

The loggers send the request and the response as two events that share an id: KServe's ``ce_id`` (the
inference request id), Seldon's ``requestid`` extension (its per-request ``puid``; Seldon gives each logged
event a fresh ``ce_id``). :class:`Pairing` keeps whichever half arrives first until the other comes, in
bounded memory and for at most ``ttl_s`` of message time; a half that waits longer is dropped and counted.
A request of N rows and its response make N prediction events, with request ids ``<id>`` (one row) or
``<id>/<row>``.

Which model and version? ``model_attribute`` (default ``inferenceservicename``) names the CloudEvent
extension holding the model, falling back to the v2 response's ``model_name``; the version is the v2
response's ``model_version``, else the ``endpoint`` extension (``default``/``canary`` predictor), else
``unknown``. The event time is the request's ``time`` attribute, the latency the gap to the response's.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from models.adapters.base import PREDICTIONS, Adapter, Event, RawHeaders
from models.adapters.cloudevents import CloudEvent, from_kafka
from models.adapters.inference import request_rows, response_outputs
from models.schema import InvalidEvent, PredictionEvent

KSERVE_TYPES = {"org.kubeflow.serving.inference.request": "request",
                "org.kubeflow.serving.inference.response": "response"}
SELDON_TYPES = {"io.seldon.serving.inference.request": "request",
                "io.seldon.serving.inference.response": "response"}
SELDON_IGNORED = frozenset({"io.seldon.serving.feedback"})


@dataclass(frozen=True, slots=True)
class Half:
    """One side of a request/response pair, waiting for the other."""

    event: CloudEvent
    received: float  # message time, for the time-to-live


class Pairing:
    """Request and response halves by key, oldest first; at most ``max_pending``, none older than ``ttl_s``.

    ``offer(key, side, half, now)`` returns ``(request, response)`` when ``half`` completes a pair, else None.
    The clock is the message time handed in, so a replay pairs and expires exactly as the live run did.
    """

    def __init__(self, max_pending: int = 10_000, ttl_s: float = 60.0) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self._waiting: OrderedDict[tuple[Any, ...], tuple[str, Half]] = OrderedDict()
        self._clock = float("-inf")
        self.paired = 0
        self.expired = 0
        self.evicted = 0
        self.replaced = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def offer(self, key: tuple[Any, ...], side: str, half: Half, now: float) -> tuple[Half, Half] | None:
        if side not in ("request", "response"):
            raise ValueError(f"side must be 'request' or 'response', got {side!r}")
        self._clock = max(self._clock, now)
        self._expire()
        waiting = self._waiting.get(key)
        if waiting is not None and waiting[0] != side:
            del self._waiting[key]
            self.paired += 1
            other = waiting[1]
            return (half, other) if side == "request" else (other, half)
        if waiting is not None:
            self.replaced += 1  # a repeated half (redelivery): the newer one waits
            del self._waiting[key]
        self._waiting[key] = (side, half)
        if len(self._waiting) > self.max_pending:
            self._waiting.popitem(last=False)
            self.evicted += 1
        return None

    def _expire(self) -> None:
        horizon = self._clock - self.ttl_s
        waiting = self._waiting
        while waiting:
            _, oldest = next(iter(waiting.values()))
            if oldest.received >= horizon:
                return
            waiting.popitem(last=False)
            self.expired += 1

    def stats(self) -> dict[str, int]:
        return {"waiting": len(self), "paired": self.paired, "expired": self.expired, "evicted": self.evicted,
                "replaced": self.replaced}


class PayloadLogAdapter(Adapter):
    """CloudEvents payload logs of one serving stack (``types`` maps CloudEvents types to request/response)."""

    target: ClassVar[str] = PREDICTIONS
    types: ClassVar[Mapping[str, str]] = {}
    ignored: ClassVar[frozenset[str]] = frozenset()
    pair_attribute: ClassVar[str | None] = None  # extension that pairs halves; None: the event id

    def __init__(
        self,
        *,
        pair_ttl_s: float = 60.0,
        max_pending: int = 10_000,
        model_attribute: str = "inferenceservicename",
        version_attribute: str = "endpoint",
        prediction_output: str | None = None,
        feature_names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.pairing = Pairing(max_pending, pair_ttl_s)
        self.model_attribute = model_attribute
        self.version_attribute = version_attribute
        self.prediction_output = prediction_output
        self.feature_names = dict(feature_names or {})
        self.ignored_events = 0

    def translate(self, value: bytes | None, headers: RawHeaders = None, timestamp: float = 0.0) -> list[Event]:
        event = from_kafka(value, headers)
        side = self.types.get(event.type)
        if side is None:
            if event.type in self.ignored:
                self.ignored_events += 1
                return []
            raise InvalidEvent(f"unknown {self.format} event type {event.type!r}; expected one of {sorted(self.types)}")
        pair_id = event.attribute(self.pair_attribute) if self.pair_attribute else None
        pair_id = pair_id or event.id
        # Seldon logs every node of an inference graph under the same request id: the node is part of the key.
        key = (event.attribute("modelid"), event.attribute(self.model_attribute), pair_id)
        pair = self.pairing.offer(key, side, Half(event, timestamp), timestamp)
        if pair is None:
            return []
        return self._predictions(pair_id, pair[0], pair[1], timestamp)

    def _predictions(self, pair_id: str, request: Half, response: Half, now: float) -> list[Event]:
        req, res = request.event, response.event
        body = res.data if isinstance(res.data, dict) else {}
        model = req.attribute(self.model_attribute) or res.attribute(self.model_attribute) or body.get("model_name")
        if not isinstance(model, str) or not model:
            raise InvalidEvent(f"cannot tell the model: no '{self.model_attribute}' attribute and no 'model_name' "
                               f"in the response of {pair_id!r}")
        version = body.get("model_version") or req.attribute(self.version_attribute) or "unknown"
        rows = request_rows(req.data, self.feature_names.get(model))
        outputs = response_outputs(res.data, self.prediction_output)
        if len(rows) != len(outputs):
            raise InvalidEvent(f"request {pair_id!r} has {len(rows)} rows but its response {len(outputs)}")
        started = req.time if req.time is not None else (res.time if res.time is not None else request.received)
        latency = None
        if req.time is not None and res.time is not None and res.time >= req.time:
            latency = round((res.time - req.time) * 1000.0, 3)
        events: list[Event] = []
        for i, (features, output) in enumerate(zip(rows, outputs)):
            native: dict[str, Any] = {
                "type": "prediction",
                "request_id": pair_id if len(rows) == 1 else f"{pair_id}/{i}",
                "model": model, "version": str(version), "timestamp": started,
                "features": features, "prediction": output.prediction,
            }
            if output.confidence is not None:
                native["confidence"] = output.confidence
            if output.scores is not None:
                native["scores"] = output.scores
            if latency is not None:
                native["latency_ms"] = latency
            events.append(PredictionEvent.from_dict(native))
        return events

    def stats(self) -> dict[str, int]:
        return {**self.pairing.stats(), "ignored": self.ignored_events}


class KServeAdapter(PayloadLogAdapter):
    format: ClassVar[str] = "kserve"
    types = KSERVE_TYPES


class SeldonAdapter(PayloadLogAdapter):
    format: ClassVar[str] = "seldon"
    types = SELDON_TYPES
    ignored = SELDON_IGNORED
    pair_attribute = "requestid"
