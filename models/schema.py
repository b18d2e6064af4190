"""Every record that crosses a topic: input events, detections and tickets.

One module so producers, detectors, the router and the docs agree on one shape. Decoding validates
(types, required fields, finite numbers) and raises :class:`InvalidEvent` with a reason a producer can
act on; the agents turn that into a dead-letter message instead of a crash.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Mapping

SCHEMA_VERSION = 1
MAX_FEATURES = 1024
MAX_STRING = 256

Scalar = float | str | bool | None


class InvalidEvent(ValueError):
    """Raised for input that cannot be processed; the message is the reason sent to the dead-letter topic."""


class Area(str, Enum):
    BUSINESS = "Business"
    TECHNICAL_OPERATIONS = "Technical Operations"
    DATA_OPERATIONS = "Data Operations"
    USER = "User"


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class DetectionKind(str, Enum):
    FEATURE_DRIFT = "feature_drift"
    PREDICTION_DRIFT = "prediction_drift"
    CONFIDENCE_DROP = "confidence_drop"
    PERFORMANCE_DRIFT = "performance_drift"
    NEGATIVE_FEEDBACK = "negative_feedback"
    DATA_QUALITY = "data_quality"
    LATENCY_SPIKE = "latency_spike"
    INFRA_ANOMALY = "infra_anomaly"
    PIPELINE_STALE = "pipeline_stale"
    LABEL_DRIFT = "label_drift"  # the ground truth's class mix (or level) moved: the world changed under the model


class TicketStatus(str, Enum):
    TRIGGERED = "triggered"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# --- field readers: each names the field in its error so a producer knows what to fix ---------------


def _get(d: Mapping[str, Any], name: str) -> Any:
    try:
        return d[name]
    except KeyError:
        raise InvalidEvent(f"missing required field '{name}'") from None


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"field '{name}' must be a non-empty string, got {type(value).__name__}")
    if len(value) > MAX_STRING:
        raise InvalidEvent(f"field '{name}' is longer than {MAX_STRING} characters")
    return value


def _opt_string(d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    return None if value is None else _string(value, name)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"field '{name}' must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidEvent(f"field '{name}' must be finite, got {value}")
    return value


def _opt_number(d: Mapping[str, Any], name: str) -> float | None:
    value = d.get(name)
    return None if value is None else _number(value, name)


def _version(value: Any) -> str:
    """Versions are strings, but serving stacks often log them as numbers: accept both, nothing else."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidEvent(f"field 'version' must be a string or a number, got {type(value).__name__}")
    return _string(str(value), "version")


def _timestamp(d: Mapping[str, Any], name: str = "timestamp") -> float:
    """Epoch seconds, or an ISO 8601 string with a time zone (what most serving stacks log)."""
    value = _get(d, name)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(f"field '{name}' is not an ISO 8601 timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise InvalidEvent(f"field '{name}' needs a time zone: {value[:40]!r}")
        return parsed.timestamp()
    return _number(value, name)


_SCALAR_TYPES = frozenset((float, int, str, bool, type(None)))


def _features(value: Any) -> dict[str, Scalar]:
    if not isinstance(value, dict):
        raise InvalidEvent(f"field 'features' must be an object, got {type(value).__name__}")
    if len(value) > MAX_FEATURES:
        raise InvalidEvent(f"field 'features' has {len(value)} entries, more than {MAX_FEATURES}")
    if _SCALAR_TYPES.issuperset(map(type, value.values())):
        return value  # the usual case, checked without a Python step per feature
    for key, item in value.items():
        if item is None or isinstance(item, (str, bool)):
            continue
        if not isinstance(item, (int, float)):
            raise InvalidEvent(f"feature '{key}' must be a number, string, boolean or null")
        # NaN is a data-quality finding, not a malformed event: keep it so the monitor can count it.
    return value


def _scores(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidEvent("field 'scores' must be an object of class -> probability")
    return {str(k): _number(v, f"scores.{k}") for k, v in value.items()}


def _check_envelope(d: Any, expected_type: str) -> Mapping[str, Any]:
    if not isinstance(d, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(d).__name__}")
    version = d.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise InvalidEvent(f"unknown schema_version {version!r} (this worker reads {SCHEMA_VERSION})")
    kind = d.get("type", expected_type)
    if kind != expected_type:
        raise InvalidEvent(f"unknown event type {kind!r}, expected {expected_type!r}")
    return d


# --- input events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PredictionEvent:
    """One model output, as the serving stack saw it; ground truth arrives later as a LabelEvent."""

    request_id: str
    model: str
    version: str
    timestamp: float
    features: dict[str, Scalar]
    prediction: Scalar
    confidence: float | None = None
    scores: dict[str, float] | None = None
    latency_ms: float | None = None
    segment: str | None = None
    type: str = "prediction"

    @classmethod
    def from_dict(cls, d: Any) -> PredictionEvent:
        d = _check_envelope(d, "prediction")
        prediction = _get(d, "prediction")
        if not (prediction is None or isinstance(prediction, (str, bool, int, float))):
            raise InvalidEvent("field 'prediction' must be a number, string, boolean or null")
        if isinstance(prediction, float) and not math.isfinite(prediction):
            raise InvalidEvent("field 'prediction' must be finite")
        confidence = _opt_number(d, "confidence")
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise InvalidEvent(f"field 'confidence' must be in [0, 1], got {confidence}")
        latency = _opt_number(d, "latency_ms")
        if latency is not None and latency < 0:
            raise InvalidEvent(f"field 'latency_ms' must be >= 0, got {latency}")
        return cls(
            request_id=_string(_get(d, "request_id"), "request_id"),
            model=_string(_get(d, "model"), "model"),
            version=_version(_get(d, "version")),
            timestamp=_timestamp(d),
            features=_features(_get(d, "features")),
            prediction=prediction,
            confidence=confidence,
            scores=_scores(d.get("scores")),
            latency_ms=latency,
            segment=_opt_string(d, "segment"),
        )


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """Ground truth and/or user feedback for an earlier prediction, joined to it by request id."""

    request_id: str
    model: str
    timestamp: float
    label: Scalar = None
    feedback: float | None = None  # user rating in [-1, 1]: -1 rejected, 0 neutral, 1 accepted
    type: str = "label"

    @classmethod
    def from_dict(cls, d: Any) -> LabelEvent:
        d = _check_envelope(d, "label")
        label = d.get("label")
        if not (label is None or isinstance(label, (str, bool, int, float))):
            raise InvalidEvent("field 'label' must be a number, string, boolean or null")
        feedback = _opt_number(d, "feedback")
        if feedback is not None and not -1.0 <= feedback <= 1.0:
            raise InvalidEvent(f"field 'feedback' must be in [-1, 1], got {feedback}")
        if label is None and feedback is None:
            raise InvalidEvent("a label event needs 'label' or 'feedback'")
        return cls(
            request_id=_string(_get(d, "request_id"), "request_id"),
            model=_string(_get(d, "model"), "model"),
            timestamp=_timestamp(d),
            label=label,
            feedback=feedback,
        )


SOURCE_KINDS = ("service", "host", "pipeline")


@dataclass(frozen=True, slots=True)
class InfraEvent:
    """One measurement from a service, host or data pipeline that models depend on."""

    source: str
    metric: str
    value: float
    timestamp: float
    source_kind: str = "service"
    unit: str | None = None
    model: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    type: str = "infra"

    @classmethod
    def from_dict(cls, d: Any) -> InfraEvent:
        d = _check_envelope(d, "infra")
        source_kind = d.get("source_kind", "service")
        if source_kind not in SOURCE_KINDS:
            raise InvalidEvent(f"field 'source_kind' must be one of {SOURCE_KINDS}, got {source_kind!r}")
        attributes = d.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise InvalidEvent("field 'attributes' must be an object")
        return cls(
            source=_string(_get(d, "source"), "source"),
            metric=_string(_get(d, "metric"), "metric"),
            value=_number(_get(d, "value"), "value"),
            timestamp=_timestamp(d),
            source_kind=source_kind,
            unit=_opt_string(d, "unit"),
            model=_opt_string(d, "model"),
            attributes={str(k): str(v) for k, v in attributes.items()},
        )


def decode_prediction_topic(d: Any) -> PredictionEvent | LabelEvent:
    """The predictions topic carries predictions and the labels that follow them, told apart by 'type'."""
    if isinstance(d, dict) and d.get("type") == "label":
        return LabelEvent.from_dict(d)
    return PredictionEvent.from_dict(d)


# --- detections and tickets ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    """What a monitor concluded, with enough evidence for a human to check it.

    ``entity`` holds the labels that say where (model, version, segment, feature, or source, metric);
    routing groups and deduplicates on them.
    """

    kind: DetectionKind
    entity: dict[str, str]
    score: float
    severity: Severity
    event_time: float
    detector: str
    evidence: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["severity"] = self.severity.value
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Detection:
        if not isinstance(d, dict):
            raise InvalidEvent("detection must be a JSON object")
        try:
            kind = DetectionKind(_get(d, "kind"))
            severity = Severity(_get(d, "severity"))
        except ValueError as exc:
            raise InvalidEvent(str(exc)) from None
        entity = _get(d, "entity")
        if not isinstance(entity, dict):
            raise InvalidEvent("field 'entity' must be an object")
        evidence = d.get("evidence") or {}
        if not isinstance(evidence, dict):
            raise InvalidEvent("field 'evidence' must be an object")
        return cls(
            kind=kind,
            entity={str(k): str(v) for k, v in entity.items()},
            score=_number(_get(d, "score"), "score"),
            severity=severity,
            event_time=_timestamp(d, "event_time"),
            detector=_string(_get(d, "detector"), "detector"),
            evidence=evidence,
            summary=str(d.get("summary", "")),
        )


@dataclass(frozen=True, slots=True)
class Ticket:
    """One revision of an incident. Every change is a new revision under the same dedup key."""

    incident_id: str
    dedup_key: str
    revision: int
    status: TicketStatus
    severity: Severity
    priority: str
    areas: tuple[Area, ...]
    primary_area: Area
    summary: str
    labels: dict[str, str]
    kinds: tuple[DetectionKind, ...]
    started_at: float
    last_seen: float
    occurrences: int
    update_reason: str
    ended_at: float | None = None
    runbook: str | None = None
    detections: tuple[dict[str, Any], ...] = ()
    acknowledged_by: str | None = None
    caused_by: tuple[dict[str, str], ...] = ()  # open upstream incidents that explain this one
    silenced_by: tuple[str, ...] = ()  # silence ids: the ticket is recorded but nobody is paged
    actions: tuple[dict[str, Any], ...] = ()  # operator actions: at, by, action, comment

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "incident_id": self.incident_id,
            "dedup_key": self.dedup_key,
            "revision": self.revision,
            "status": self.status.value,
            "severity": self.severity.value,
            "priority": self.priority,
            "areas": [a.value for a in self.areas],
            "primary_area": self.primary_area.value,
            "summary": self.summary,
            "labels": self.labels,
            "kinds": [k.value for k in self.kinds],
            "started_at": self.started_at,
            "last_seen": self.last_seen,
            "ended_at": self.ended_at,
            "occurrences": self.occurrences,
            "update_reason": self.update_reason,
            "runbook": self.runbook,
            "detections": list(self.detections),
            "acknowledged_by": self.acknowledged_by,
            "caused_by": list(self.caused_by),
            "silenced_by": list(self.silenced_by),
            "actions": list(self.actions),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ticket:
        return cls(
            incident_id=d["incident_id"],
            dedup_key=d["dedup_key"],
            revision=int(d["revision"]),
            status=TicketStatus(d["status"]),
            severity=Severity(d["severity"]),
            priority=d["priority"],
            areas=tuple(Area(a) for a in d["areas"]),
            primary_area=Area(d["primary_area"]),
            summary=d["summary"],
            labels=dict(d["labels"]),
            kinds=tuple(DetectionKind(k) for k in d["kinds"]),
            started_at=float(d["started_at"]),
            last_seen=float(d["last_seen"]),
            occurrences=int(d["occurrences"]),
            update_reason=d["update_reason"],
            ended_at=d.get("ended_at"),
            runbook=d.get("runbook"),
            detections=tuple(d.get("detections", ())),
            acknowledged_by=d.get("acknowledged_by"),
            caused_by=tuple(d.get("caused_by", ())),
            silenced_by=tuple(d.get("silenced_by", ())),
            actions=tuple(d.get("actions", ())),
        )


# --- operator input -----------------------------------------------------------------------------------


class ActionKind(str, Enum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    CORRECT_AREAS = "correct_areas"
    COMMENT = "comment"


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """What a person did to an incident. Actions travel as events so every worker and a restart see them."""

    action: ActionKind
    dedup_key: str
    by: str
    at: float
    comment: str = ""
    areas: tuple[Area, ...] = ()  # for correct_areas: the areas the incident should have had

    def to_dict(self) -> dict[str, Any]:
        return {"type": "action", "action": self.action.value, "dedup_key": self.dedup_key, "by": self.by,
                "at": self.at, "comment": self.comment, "areas": [a.value for a in self.areas]}

    @classmethod
    def from_dict(cls, d: Any) -> OperatorAction:
        if not isinstance(d, dict):
            raise InvalidEvent("an action must be a JSON object")
        raw_areas = d.get("areas") or []
        if not isinstance(raw_areas, list):
            raise InvalidEvent("field 'areas' must be a list of experience areas")
        try:
            action = ActionKind(_get(d, "action"))
            areas = tuple(Area(a) for a in raw_areas)
        except ValueError as exc:
            raise InvalidEvent(str(exc)) from None
        if action == ActionKind.CORRECT_AREAS and not areas:
            raise InvalidEvent("correct_areas needs a non-empty 'areas' list")
        comment = d.get("comment") or ""
        if not isinstance(comment, str) or len(comment) > 4096:
            raise InvalidEvent("field 'comment' must be a string of at most 4096 characters")
        return cls(action, _string(_get(d, "dedup_key"), "dedup_key"), _string(_get(d, "by"), "by"),
                   _number(_get(d, "at"), "at"), comment, areas)


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes matching incidents: they are still tracked and published, marked silenced, and nobody is paged.

    A matcher value starting with ``~`` is a regular expression (full match); otherwise it must be equal.
    """

    id: str
    matchers: dict[str, str]
    created_by: str
    starts_at: float
    expires_at: float | None = None  # None: until removed (or until resolved, see below)
    until_resolved: bool = False  # ends when the first incident it silenced resolves
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "silence", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Any) -> Silence:
        if not isinstance(d, dict):
            raise InvalidEvent("a silence must be a JSON object")
        matchers = _get(d, "matchers")
        if not isinstance(matchers, dict) or not matchers:
            raise InvalidEvent("field 'matchers' must be a non-empty object of label -> value")
        expires = _opt_number(d, "expires_at")
        if expires is None and not d.get("until_resolved"):
            raise InvalidEvent("a silence needs 'expires_at' or 'until_resolved'")
        return cls(
            id=_string(_get(d, "id"), "id"),
            matchers={str(k): str(v) for k, v in matchers.items()},
            created_by=_string(_get(d, "created_by"), "created_by"),
            starts_at=_number(_get(d, "starts_at"), "starts_at"),
            expires_at=expires,
            until_resolved=bool(d.get("until_resolved", False)),
            comment=str(d.get("comment", "")),
        )
