"""Reading CloudEvents 1.0 from a Kafka message, in each form model servers put them there.

* **Binary mode** (CloudEvents Kafka protocol binding): attributes in ``ce_`` headers, ``content-type``
  for ``datacontenttype``, the value is the data. What a Knative KafkaSink writes for KServe's and
  Seldon's payload loggers. HTTP-style ``ce-`` names (a bridge that copied HTTP headers) are read too.
* **Structured mode**: the value is a JSON event (``specversion``, ``id``, ``type``, ``source``,
  ``data`` or ``data_base64``), announced by ``content-type: application/cloudevents+json`` or recognised by
  its ``specversion`` member.
* **Seldon Core's direct Kafka logger** (``LOGGER_KAFKA_BROKER``): plain headers ``type``,
  ``requestid``, ``modelid``, ``inferenceservicename``, ``namespace``, ``endpoint``, ``protocol`` and
  ``content-type``; the value is the payload. Read as an event whose id is the request id.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Mapping

from models import codec
from models.adapters.base import RawHeaders, header_map, rfc3339
from models.schema import InvalidEvent

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
SPEC_VERSION = "1.0"
_CONTEXT = ("specversion", "id", "type", "source", "time", "subject", "datacontenttype", "dataschema")
SELDON_LOGGER_HEADERS = ("type", "requestid", "modelid", "inferenceservicename", "namespace", "endpoint", "protocol")


@dataclass(frozen=True, slots=True)
class CloudEvent:
    id: str
    type: str
    source: str
    time: float | None
    extensions: dict[str, str] = field(default_factory=dict)
    data: Any = None
    mode: str = "binary"  # binary | structured | seldon-kafka

    def attribute(self, name: str) -> str | None:
        return self.extensions.get(name)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # no datacontenttype: JSON is what every payload logger writes
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _data(raw: bytes | None, content_type: str | None) -> Any:
    if not _is_json(content_type):
        raise InvalidEvent(f"event data has content-type {content_type!r}; only JSON payloads can be read")
    if raw is None or len(raw) == 0:
        raise InvalidEvent("event has no data")
    return codec.loads(raw)


def _required(attributes: Mapping[str, Any], name: str, mode: str) -> str:
    value = attributes.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"CloudEvent ({mode} mode) lacks the required attribute '{name}'")
    return value


def _time(attributes: Mapping[str, Any]) -> float | None:
    value = attributes.get("time")
    return None if value in (None, "") else rfc3339(value, "time")


def _check_version(attributes: Mapping[str, Any], mode: str) -> None:
    version = attributes.get("specversion")
    if version is not None and version != SPEC_VERSION:
        raise InvalidEvent(f"CloudEvent ({mode} mode) has specversion {version!r}; this reader knows {SPEC_VERSION}")


def from_kafka(value: bytes | None, headers: RawHeaders) -> CloudEvent:
    """The CloudEvent one Kafka message carries, in whichever of the three forms it came."""
    h = header_map(headers)
    content_type = h.get("content-type")
    binary = {name[3:]: v for name, v in h.items() if name.startswith(("ce_", "ce-"))}
    if binary:
        _check_version(binary, "binary")
        return CloudEvent(
            id=_required(binary, "id", "binary"),
            type=_required(binary, "type", "binary"),
            source=binary.get("source", ""),
            time=_time(binary),
            extensions={k: v for k, v in binary.items() if k not in _CONTEXT},
            data=_data(value, content_type),
            mode="binary",
        )
    if "type" in h and "requestid" in h:
        return CloudEvent(
            id=_required(h, "requestid", "seldon-kafka"),
            type=h["type"],
            source=h.get("inferenceservicename", ""),
            time=None,
            extensions={k: h[k] for k in SELDON_LOGGER_HEADERS if k in h},
            data=_data(value, content_type),
            mode="seldon-kafka",
        )
    structured = content_type is not None and content_type.split(";", 1)[0].strip().lower() == STRUCTURED_CONTENT_TYPE
    doc = codec.loads(value) if value else None
    if isinstance(doc, dict) and (structured or "specversion" in doc):
        return _structured(doc)
    if structured:
        raise InvalidEvent("a structured CloudEvent must be a JSON object")
    raise InvalidEvent(
        "not a CloudEvent: no ce_* headers (binary mode), no JSON event with 'specversion' (structured mode) "
        "and no Seldon logger headers ('type', 'requestid')"
    )


def _structured(doc: dict[str, Any]) -> CloudEvent:
    _check_version(doc, "structured")
    if "data_base64" in doc:
        try:
            raw = base64.b64decode(doc["data_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidEvent("CloudEvent 'data_base64' is not base64") from None
        data = _data(raw, doc.get("datacontenttype"))
    elif "data" in doc:
        if not _is_json(doc.get("datacontenttype")):
            raise InvalidEvent(f"event data has content-type {doc.get('datacontenttype')!r}; only JSON can be read")
        data = doc["data"]
        if isinstance(data, str) and data[:1] in ("{", "["):
            data = codec.loads(data)  # JSON carried as a string by some SDKs
    else:
        raise InvalidEvent("structured CloudEvent has neither 'data' nor 'data_base64'")
    extensions = {k: str(v) for k, v in doc.items() if k not in _CONTEXT and k not in ("data", "data_base64")}
    return CloudEvent(
        id=_required(doc, "id", "structured"),
        type=_required(doc, "type", "structured"),
        source=str(doc.get("source", "")),
        time=_time(doc),
        extensions=extensions,
        data=data,
        mode="structured",
    )
