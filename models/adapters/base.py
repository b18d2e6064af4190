"""What every input adapter shares: one Kafka message in (value, headers, record time), native events out.

An adapter is a pure translator: no Kafka, no Faust, no clock of its own. The record timestamp of the
message is the only notion of time it gets, so a replay of the same messages gives the same events.
A message that cannot be translated raises :class:`~models.schema.InvalidEvent` with the reason; the
agent dead-letters it. A message may yield no event (half of a request/response pair) or several (a batch).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from models import codec
from models.schema import InfraEvent, InvalidEvent, LabelEvent, PredictionEvent

Event = PredictionEvent | LabelEvent | InfraEvent
RawHeaders = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None

PREDICTIONS = "predictions"
INFRASTRUCTURE = "infrastructure"


class Adapter(ABC):
    """Translates one foreign message into native events for the agent named by ``target``."""

    format: ClassVar[str]
    target: ClassVar[str]  # PREDICTIONS or INFRASTRUCTURE: which agent and monitors get the events

    @abstractmethod
    def translate(self, value: bytes | None, headers: RawHeaders = None, timestamp: float = 0.0) -> list[Event]:
        """Events carried by one message; ``timestamp`` is its Kafka record time in epoch seconds."""

    def stats(self) -> dict[str, int]:
        """Counters worth watching (pairs waiting, expired...); empty for stateless adapters."""
        return {}


def header_map(headers: RawHeaders) -> dict[str, str]:
    """Kafka headers as a dict with lower-case names and text values (the last of repeated names wins)."""
    if not headers:
        return {}
    items: Iterable[tuple[str, bytes | None]] = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        if value is None:
            continue
        try:
            out[name.lower()] = value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
        except UnicodeDecodeError:
            raise InvalidEvent(f"header '{name}' is not UTF-8") from None
    return out


def json_value(value: bytes | None, what: str = "message") -> Any:
    """The message value as JSON, with the adapter's name for it in the reason when it is not."""
    try:
        return codec.loads(value)
    except InvalidEvent as exc:
        raise InvalidEvent(f"{what}: {exc}") from None


def rfc3339(value: Any, name: str) -> float:
    """Epoch seconds from an RFC 3339 / ISO 8601 string with a zone (nanosecond digits are truncated)."""
    if not isinstance(value, str):
        raise InvalidEvent(f"'{name}' must be an RFC 3339 timestamp string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"'{name}' is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEvent(f"'{name}' needs a time zone: {value[:40]!r}")
    return parsed.timestamp()


def finite(value: Any) -> float | None:
    """A finite float from a JSON number (bools count as 0/1), or None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def series_name(metric: str, labels: Mapping[str, str]) -> str:
    """``metric{k=v,...}`` with sorted labels: one name per time series, stable across messages."""
    if not labels:
        return metric
    return metric + "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


@dataclass(frozen=True, slots=True)
class SourceLink:
    """What the model catalogue says about an infrastructure source: its kind and the model it feeds."""

    kind: str
    model: str | None = None


def infra_event(
    *,
    source: str,
    source_kind: str,
    metric: str,
    value: float,
    timestamp: float,
    unit: str | None,
    model: str | None,
    attributes: Mapping[str, str],
    links: Mapping[str, SourceLink],
) -> InfraEvent:
    """Build the native event through the native decoder, so adapted events obey exactly its rules."""
    link = links.get(source)
    if link is not None:
        source_kind = link.kind
        model = model or link.model
    native: dict[str, Any] = {
        "type": "infra", "source": source, "source_kind": source_kind, "metric": metric, "value": value,
        "timestamp": timestamp, "attributes": dict(attributes),
    }
    if unit:
        native["unit"] = unit
    if model:
        native["model"] = model
    return InfraEvent.from_dict(native)
