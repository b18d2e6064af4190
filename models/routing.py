"""From detections to incident revisions: experience areas, priority, dedup and lifecycle, as pure functions.

Rules are data (``rules/default.toml``), validated once at start-up. The decisions take the current
incident state and ``now`` as arguments and return the new state plus the revision to publish, so the
same code runs in the routing agent (state in a changelogged Faust table), in tests with a fake clock and
in an offline backtest.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from models.schema import (
    ActionKind,
    Area,
    Detection,
    DetectionKind,
    OperatorAction,
    Severity,
    Silence,
    Ticket,
    TicketStatus,
)
from models.silences import muting

MAX_DETECTIONS_KEPT = 20
GROUP_ROOTS = ("model", "source")


class RulesError(ValueError):
    """A rules file that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: DetectionKind
    areas: tuple[Area, ...]
    primary: Area
    group_by: tuple[str, ...]
    runbook: str | None = None
    manual_resolve: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    rules: Mapping[DetectionKind, Rule]
    priority: Mapping[Severity, tuple[str, ...]]
    tiers: Mapping[str, int] = field(default_factory=dict)
    depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model -> upstream sources
    default_tier: int = 2
    group_interval_s: float = 60.0
    resolve_after_s: float = 600.0
    group_wait_s: float = 0.0
    repeat_interval_s: float = 4 * 3600.0

    def rule_for(self, kind: DetectionKind) -> Rule:
        return self.rules[kind]

    def group(self, detection: Detection) -> tuple[str, dict[str, str]]:
        """The dedup key and the labels it is made of: the same labels always give the same key."""
        rule = self.rules[detection.kind]
        labels = {name: detection.entity[name] for name in rule.group_by if name in detection.entity}
        if rule.group_by[0] not in labels:
            raise ValueError(f"{detection.kind.value} detection lacks the '{rule.group_by[0]}' label")
        canonical = "|".join(f"{k}={labels[k]}" for k in rule.group_by if k in labels)
        return canonical, labels

    def priority_of(self, severity: Severity, labels: Mapping[str, str]) -> str:
        """The most critical model an incident touches sets its tier (labels may hold several models)."""
        models = labels.get("model", "").split(",")
        tier = min(self.tiers.get(m, self.default_tier) for m in models)
        return self.priority[severity][tier - 1]

    def with_overrides(self, **values: float) -> Rules:
        return replace(self, **values)


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and validate a rules file; ``None`` means the shipped defaults."""
    if path is None:
        text = resources.files("models").joinpath("rules/default.toml").read_text()
        where = "default rules"
    else:
        text, where = Path(path).read_text(), str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: not valid TOML: {exc}") from None
    return parse_rules(data, where)


SECTIONS = {"defaults", "priority", "catalogue", "rule"}
DEFAULT_KEYS = {"group_interval_s", "resolve_after_s", "group_wait_s", "repeat_interval_s", "default_tier"}


def parse_rules(data: Mapping[str, Any], where: str = "rules") -> Rules:
    """Validate parsed rules; every problem, including a value of the wrong type, is a RulesError naming
    the file, because a worker with half-understood rules would page the wrong people."""
    try:
        return _parse_rules(data, where)
    except RulesError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RulesError(f"{where}: a value has the wrong type or shape ({type(exc).__name__}: {exc}); "
                         "compare with the shipped models/rules/default.toml") from None


def _parse_rules(data: Mapping[str, Any], where: str) -> Rules:
    unknown = sorted(set(data) - SECTIONS)
    if unknown:
        raise RulesError(f"{where}: unknown section(s) {unknown}; expected {sorted(SECTIONS)}")
    defaults = data.get("defaults", {})
    unknown = sorted(set(defaults) - DEFAULT_KEYS)
    if unknown:
        raise RulesError(f"{where}: unknown [defaults] key(s) {unknown}; expected {sorted(DEFAULT_KEYS)}")
    timings = {name: float(defaults.get(name, fallback))
               for name, fallback in (("group_interval_s", 60), ("resolve_after_s", 600), ("group_wait_s", 0),
                                      ("repeat_interval_s", 4 * 3600))}
    for name, value in timings.items():
        if value < 0 or (value == 0 and name != "group_wait_s"):
            raise RulesError(f"{where}: [defaults] {name} must be > 0, got {value}")
    default_tier = int(defaults.get("default_tier", 2))
    priority: dict[Severity, tuple[str, ...]] = {}
    for name, row in data.get("priority", {}).items():
        try:
            severity = Severity(name)
        except ValueError:
            raise RulesError(f"{where}: [priority] has unknown severity {name!r}") from None
        if not isinstance(row, list) or not row or not all(p in ("P1", "P2", "P3", "P4") for p in row):
            raise RulesError(f"{where}: [priority] {name} must be a list of P1..P4, one per tier")
        priority[severity] = tuple(row)
    missing = [s.value for s in Severity if s not in priority]
    if missing:
        raise RulesError(f"{where}: [priority] lacks {', '.join(missing)}")
    tiers_count = min(len(row) for row in priority.values())
    tiers: dict[str, int] = {}
    depends_on: dict[str, tuple[str, ...]] = {}
    for model, entry in data.get("catalogue", {}).items():
        tier = int(entry.get("tier", default_tier)) if isinstance(entry, dict) else -1
        if not 1 <= tier <= tiers_count:
            raise RulesError(f"{where}: catalogue entry {model!r} needs a tier from 1 to {tiers_count}")
        tiers[model] = tier
        upstream = entry.get("depends_on", [])
        if not isinstance(upstream, list) or not all(isinstance(u, str) for u in upstream):
            raise RulesError(f"{where}: catalogue entry {model!r}: depends_on must be a list of source names")
        depends_on[model] = tuple(upstream)
    if not 1 <= default_tier <= tiers_count:
        raise RulesError(f"{where}: default_tier must be from 1 to {tiers_count}")

    rules: dict[DetectionKind, Rule] = {}
    for i, raw in enumerate(data.get("rule", []), 1):
        rules_at = f"{where}: rule #{i} ({raw.get('kind', '?')})"
        try:
            kind = DetectionKind(raw["kind"])
            areas = tuple(Area(a) for a in raw["areas"])
            primary = Area(raw.get("primary", raw["areas"][0] if raw["areas"] else ""))
        except KeyError as exc:
            raise RulesError(f"{rules_at}: missing {exc.args[0]!r}") from None
        except (ValueError, IndexError) as exc:
            raise RulesError(f"{rules_at}: {exc}") from None
        group_by = tuple(raw.get("group_by", ()))
        if not group_by or group_by[0] not in GROUP_ROOTS:
            raise RulesError(f"{rules_at}: group_by must start with one of {GROUP_ROOTS}")
        if primary not in areas:
            raise RulesError(f"{rules_at}: primary {primary.value!r} is not among its areas")
        if kind in rules:
            raise RulesError(f"{rules_at}: a second rule for the same kind")
        unknown = set(raw) - {"kind", "areas", "primary", "group_by", "runbook", "manual_resolve"}
        if unknown:
            raise RulesError(f"{rules_at}: unknown key(s) {sorted(unknown)}")
        rules[kind] = Rule(kind, areas, primary, group_by, raw.get("runbook"), bool(raw.get("manual_resolve", False)))
    uncovered = [k.value for k in DetectionKind if k not in rules]
    if uncovered:
        raise RulesError(f"{where}: no rule for detection kind(s) {', '.join(uncovered)}")
    return Rules(
        rules=rules,
        priority=priority,
        tiers=tiers,
        depends_on=depends_on,
        default_tier=default_tier,
        **timings,
    )


# --- lifecycle --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentState:
    """The latest revision of one incident plus what the router needs to rate-limit its updates."""

    ticket: Ticket
    published_at: float
    unpublished: int = 0  # occurrences since the last published revision
    waiting: bool = False  # opened, not yet published: gathering detections for group_wait_s

    @property
    def is_open(self) -> bool:
        return self.ticket.status != TicketStatus.RESOLVED

    def to_dict(self) -> dict[str, Any]:
        return {"ticket": self.ticket.to_dict(), "published_at": self.published_at, "unpublished": self.unpublished,
                "waiting": self.waiting}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IncidentState:
        return cls(Ticket.from_dict(d["ticket"]), float(d["published_at"]), int(d["unpublished"]),
                   bool(d.get("waiting", False)))


def _incident_id(dedup_key: str, started_at: float) -> str:
    """Deterministic, so a replay after a crash names the same incident."""
    return hashlib.sha1(f"{dedup_key}@{started_at:.3f}".encode()).hexdigest()[:16]


def _merge(ordered: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    return ordered + tuple(x for x in new if x not in ordered)


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """What the router knows beyond the incident itself; the agent gathers it from global tables."""

    silences: tuple[Silence, ...] = ()
    causes: tuple[dict[str, str], ...] = ()  # open upstream incidents: incident_id, dedup_key, summary
    learned_areas: tuple[Area, ...] = ()  # areas the learned router adds on top of the rules


NO_CONTEXT = RoutingContext()


def route(
    detection: Detection, state: IncidentState | None, rules: Rules, now: float, context: RoutingContext = NO_CONTEXT
) -> tuple[IncidentState, Ticket | None]:
    """Fold one detection into its incident; return the new state and the revision to publish, if any."""
    rule = rules.rule_for(detection.kind)
    dedup_key, labels = rules.group(detection)
    evidence = detection.to_dict()
    rule_areas = _merge(rule.areas, context.learned_areas)
    if state is not None and _already_seen(detection, state.ticket):
        return state, None
    if state is None or not state.is_open:
        merged_labels = _merge_labels(labels, detection.entity)
        ticket = Ticket(
            incident_id=_incident_id(dedup_key, detection.event_time),
            dedup_key=dedup_key,
            revision=1,
            status=TicketStatus.TRIGGERED,
            severity=detection.severity,
            priority=rules.priority_of(detection.severity, merged_labels),
            areas=rule_areas,
            primary_area=rule.primary,
            summary=detection.summary,
            labels=merged_labels,
            kinds=(detection.kind,),
            started_at=now,
            last_seen=now,
            occurrences=1,
            update_reason="opened",
            runbook=rule.runbook,
            detections=(evidence,),
            caused_by=context.causes,
            silenced_by=muting(context.silences, merged_labels, now),
        )
        if rules.group_wait_s > 0:
            return IncidentState(ticket, published_at=now, waiting=True), None
        return IncidentState(ticket, published_at=now), ticket

    old = state.ticket
    severity = max(old.severity, detection.severity, key=lambda s: s.rank)
    areas = _merge(old.areas, rule_areas)
    caused_by = _merge(old.caused_by, context.causes)
    kinds = _merge(old.kinds, (detection.kind,))
    merged_labels = _merge_labels(old.labels, detection.entity)
    priority = min(old.priority, rules.priority_of(severity, merged_labels))
    reasons = []
    if priority != old.priority:
        reasons.append(f"escalated to {priority}")
    if kinds != old.kinds:
        reasons.append(f"new signal {detection.kind.value}")
    if areas != old.areas:
        reasons.append("new areas " + ", ".join(a.value for a in areas if a not in old.areas))
    if caused_by != old.caused_by:
        reasons.append("explained by " + ", ".join(c["summary"] for c in caused_by if c not in old.caused_by))
    if merged_labels != old.labels and not reasons:
        reasons.append("new entity " + ", ".join(f"{k}={v}" for k, v in merged_labels.items() if old.labels.get(k) != v))
    ticket = replace(
        old,
        severity=severity,
        priority=priority,
        areas=areas,
        kinds=kinds,
        labels=merged_labels,
        caused_by=caused_by,
        silenced_by=muting(context.silences, merged_labels, now),
        last_seen=now,
        occurrences=old.occurrences + 1,
        summary=old.summary if old.kinds == kinds else f"{old.summary}; {detection.summary}",
        detections=(old.detections + (evidence,))[-MAX_DETECTIONS_KEPT:],
    )
    if state.waiting:  # still gathering: the first revision will carry all of it
        return IncidentState(ticket, state.published_at, waiting=True), None
    if reasons:
        return _publish(ticket, state, now, "; ".join(reasons))
    if now - state.published_at >= rules.group_interval_s:
        return _publish(ticket, state, now, f"{state.unpublished + 1} more occurrence(s)")
    return IncidentState(ticket, state.published_at, state.unpublished + 1), None


def _already_seen(detection: Detection, ticket: Ticket) -> bool:
    """A replay (a restarted worker re-reading detections) must not count twice nor reopen an incident:
    the same detection is already in the ticket, or it is older than an incident that has ended."""
    if ticket.status == TicketStatus.RESOLVED:
        newest = max((d["event_time"] for d in ticket.detections), default=float("-inf"))
        return detection.event_time <= newest
    return any(
        d["event_time"] == detection.event_time and d["kind"] == detection.kind.value and d["entity"] == detection.entity
        for d in ticket.detections
    )


def tick(state: IncidentState, rules: Rules, now: float) -> tuple[IncidentState, Ticket | None]:
    """Time passing: publish an incident whose group wait is over, flush rate-limited occurrences, resolve an
    incident that has gone quiet, or remind that one is still open after repeat_interval_s."""
    if not state.is_open:
        return state, None
    ticket = state.ticket
    if state.waiting:
        if now - ticket.started_at < rules.group_wait_s:
            return state, None
        return IncidentState(ticket, published_at=now), ticket
    rule_manual = any(rules.rule_for(k).manual_resolve for k in ticket.kinds)
    if not rule_manual and now - ticket.last_seen >= rules.resolve_after_s:
        resolved = replace(ticket, status=TicketStatus.RESOLVED, ended_at=now)
        return _publish(resolved, state, now, f"quiet for {rules.resolve_after_s:.0f}s", status=TicketStatus.RESOLVED)
    if state.unpublished and now - state.published_at >= rules.group_interval_s:
        return _publish(ticket, state, now, f"{state.unpublished} more occurrence(s)")
    if now - state.published_at >= rules.repeat_interval_s:
        return _publish(ticket, state, now, f"still open after {now - ticket.started_at:.0f}s")
    return state, None


def act(state: IncidentState, action: OperatorAction, now: float) -> tuple[IncidentState, Ticket | None]:
    """Apply what an operator did; an action that changes nothing (acknowledging a resolved incident,
    resolving twice) publishes nothing."""
    ticket = state.ticket
    record = {"at": action.at, "by": action.by, "action": action.action.value, "comment": action.comment}
    noted = replace(ticket, actions=ticket.actions + (record,))
    who = f"{action.action.value.replace('_', ' ')} by {action.by}" + (f": {action.comment}" if action.comment else "")
    if action.action == ActionKind.ACKNOWLEDGE:
        if ticket.status in (TicketStatus.ACKNOWLEDGED, TicketStatus.RESOLVED):
            return state, None
        return _publish(replace(noted, acknowledged_by=action.by), state, now, who, TicketStatus.ACKNOWLEDGED)
    if action.action == ActionKind.RESOLVE:
        if ticket.status == TicketStatus.RESOLVED:
            return state, None
        return _publish(replace(noted, ended_at=now), state, now, who, TicketStatus.RESOLVED)
    if action.action == ActionKind.CORRECT_AREAS:
        record["areas"] = [a.value for a in action.areas]
        record["previous_areas"] = [a.value for a in ticket.areas]
        corrected = replace(ticket, areas=action.areas, primary_area=action.areas[0], actions=ticket.actions + (record,))
        return _publish(corrected, state, now, who)
    return _publish(noted, state, now, who)


def is_area_correction(ticket: Ticket) -> bool:
    """Whether this revision is the one an operator's area correction produced."""
    return bool(ticket.actions) and ticket.actions[-1]["action"] == ActionKind.CORRECT_AREAS.value \
        and ticket.update_reason.startswith("correct areas by ")


def _publish(
    ticket: Ticket, state: IncidentState, now: float, reason: str, status: TicketStatus | None = None
) -> tuple[IncidentState, Ticket]:
    if status is None:
        kept = (TicketStatus.ACKNOWLEDGED, TicketStatus.RESOLVED)
        status = state.ticket.status if state.ticket.status in kept else TicketStatus.UPDATED
    revision = replace(ticket, revision=state.ticket.revision + 1, status=status, update_reason=reason)
    return IncidentState(revision, published_at=now), revision


def _merge_labels(labels: Mapping[str, str], entity: Mapping[str, str]) -> dict[str, str]:
    """Grouping labels stay fixed; other entity labels accumulate (several features drift in one incident)."""
    merged = dict(labels)
    for key, value in entity.items():
        if key in merged and value not in merged[key].split(","):
            merged[key] = f"{merged[key]},{value}"
        elif key not in merged:
            merged[key] = value
    return merged


def cause_record(ticket: Ticket) -> tuple[str, dict[str, Any] | None] | None:
    """For a revision of a source incident: the source and what model tickets may cite while it is open
    (``None`` once resolved). Model incidents return ``None``: they explain nothing."""
    source = ticket.labels.get("source")
    if source is None:
        return None
    if ticket.status == TicketStatus.RESOLVED:
        return source, None
    models = sorted(set(ticket.labels.get("model", "").split(",")) - {""})
    return source, {"incident_id": ticket.incident_id, "dedup_key": ticket.dedup_key,
                    "summary": ticket.summary, "models": models}


def causes_for(detection: Detection, rules: Rules, open_sources: Mapping[str, Mapping[str, Any]]
               ) -> tuple[dict[str, str], ...]:
    """Open source incidents that explain a model detection: sources the catalogue says the model depends on,
    and sources whose own events named the model."""
    model = detection.entity.get("model")
    if model is None or rules.rule_for(detection.kind).group_by[0] != "model":
        return ()
    upstream = set(rules.depends_on.get(model, ()))
    return tuple(
        {"incident_id": c["incident_id"], "dedup_key": c["dedup_key"], "summary": c["summary"]}
        for source, c in sorted(open_sources.items())
        if source in upstream or model in c["models"]
    )


class OfflineRouter:
    """Routing for a replay (``emlops backtest --tickets``): the clock is the detections' event time, so
    a file yields the revisions the current rules would have published, quiet resolutions included."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.states: dict[str, IncidentState] = {}
        self.open_sources: dict[str, dict[str, Any]] = {}

    def route(self, detection: Detection) -> list[Ticket]:
        published = self.advance(detection.event_time)
        key, _ = self.rules.group(detection)
        context = RoutingContext(causes=causes_for(detection, self.rules, self.open_sources))
        self.states[key], ticket = route(detection, self.states.get(key), self.rules, detection.event_time, context)
        return self._note(published + ([ticket] if ticket else []))

    def advance(self, now: float) -> list[Ticket]:
        """Let time pass to ``now``: flush held-back repeats, resolve what went quiet."""
        published = []
        for key, state in self.states.items():
            self.states[key], ticket = tick(state, self.rules, now)
            if ticket is not None:
                published.append(ticket)
        return self._note(published)

    def _note(self, tickets: list[Ticket]) -> list[Ticket]:
        for ticket in tickets:
            cause = cause_record(ticket)
            if cause is not None:
                source, record = cause
                if record is None:
                    self.open_sources.pop(source, None)
                else:
                    self.open_sources[source] = record
        return tickets
