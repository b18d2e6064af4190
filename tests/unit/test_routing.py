"""Routing as a pure function of (detection, state, rules, now): tables of detections in, ticket revisions out."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pytest

from models import codec
from models.routing import (
    MAX_DETECTIONS_KEPT,
    IncidentState,
    Rules,
    RulesError,
    load_rules,
    parse_rules,
    route,
    tick,
)
from models.schema import Detection, DetectionKind, Severity, Ticket, TicketStatus

T0 = 1_700_000_000.0
DEFAULT_TEXT = resources.files("models").joinpath("rules/default.toml").read_text()
RULES = load_rules()

DO, BU, TO, US = "Data Operations", "Business", "Technical Operations", "User"
SOURCE_KINDS = {DetectionKind.INFRA_ANOMALY, DetectionKind.PIPELINE_STALE}


def det(kind: str = "feature_drift", severity: str = "warning", at: float = 0.0, **entity: str) -> Detection:
    """A detection ``at`` seconds after T0; model kinds default to churn v7, source kinds to fraud-api."""
    k = DetectionKind(kind)
    if k in SOURCE_KINDS:
        base = {"source": "fraud-api", "source_kind": "service"}
    else:
        base = {"model": "churn", "version": "7"}
    return Detection(k, {**base, **entity}, 0.5, Severity(severity), T0 + at, "test", summary=f"{kind} seen")


Step = tuple[float, "Detection | None"]  # (seconds after T0, detection) or (seconds after T0, None) for a tick


def play(steps: list[Step], rules: Rules = RULES, state: IncidentState | None = None, replay_offset: float = 0.0
         ) -> tuple[IncidentState, list[Ticket]]:
    """Route detections and ticks in order with a fake clock; return the final state and what was published.

    Each detection is stamped with its step's event time; ``replay_offset`` runs the clock that much later
    than the event times, as when a restarted worker reads the same detections again."""
    published = []
    for at, detection in steps:
        now = T0 + at + replay_offset
        if detection is None:
            state, ticket = tick(state, rules, now)
        else:
            state, ticket = route(replace(detection, event_time=T0 + at), state, rules, now)
        if ticket is not None:
            published.append(ticket)
    assert state is not None
    return state, published


def revision(t: Ticket) -> tuple[Any, ...]:
    return (t.revision, t.status.value, t.priority, [a.value for a in t.areas], t.primary_area.value, t.update_reason)


FD = det()
LIFECYCLE = [
    ("feature drift opens a Data Operations ticket", [(0, FD)],
     [(1, "triggered", "P3", [DO, BU], DO, "opened")]),
    ("critical latency spike goes to Technical Operations", [(0, det("latency_spike", "critical"))],
     [(1, "triggered", "P2", [TO, US], TO, "opened")]),
    ("confidence drop goes to the users' area", [(0, det("confidence_drop"))],
     [(1, "triggered", "P3", [US, BU], US, "opened")]),
    ("infra anomaly is grouped by source", [(0, det("infra_anomaly", metric="cpu"))],
     [(1, "triggered", "P3", [TO], TO, "opened")]),
    ("stale pipeline", [(0, det("pipeline_stale", "critical"))],
     [(1, "triggered", "P2", [DO, TO], DO, "opened")]),
    ("repeats within group_interval wait for a tick", [(0, FD), (10, FD), (20, FD), (59, None), (60, None)],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"), (2, "updated", "P3", [DO, BU], DO, "2 more occurrence(s)")]),
    ("a repeat after group_interval is published at once", [(0, FD), (60, FD), (70, None), (200, None)],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"), (2, "updated", "P3", [DO, BU], DO, "1 more occurrence(s)")]),
    ("another kind merges its areas at once", [(0, FD), (10, det("performance_drift"))],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"),
      (2, "updated", "P3", [DO, BU, US, TO], DO,
       "new signal performance_drift; new areas User, Technical Operations")]),
    ("critical escalates the priority", [(0, FD), (10, det(severity="critical"))],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"), (2, "updated", "P2", [DO, BU], DO, "escalated to P2")]),
    ("a warning after a critical does not lower the priority", [(0, det(severity="critical")), (10, FD), (60, None)],
     [(1, "triggered", "P2", [DO, BU], DO, "opened"), (2, "updated", "P2", [DO, BU], DO, "1 more occurrence(s)")]),
    ("escalation with a new kind gives every reason", [(0, FD), (10, det("confidence_drop", "critical"))],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"),
      (2, "updated", "P2", [DO, BU, US], DO, "escalated to P2; new signal confidence_drop; new areas User")]),
    ("a second drifting feature is a new entity", [(0, det(feature="spend")), (10, det(feature="tenure"))],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"),
      (2, "updated", "P3", [DO, BU], DO, "new entity feature=spend,tenure")]),
    ("a quiet incident resolves after resolve_after_s", [(0, FD), (599, None), (600, None), (1200, None)],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"), (2, "resolved", "P3", [DO, BU], DO, "quiet for 600s")]),
    ("a detection after resolution opens a new incident", [(0, FD), (600, None), (700, FD)],
     [(1, "triggered", "P3", [DO, BU], DO, "opened"), (2, "resolved", "P3", [DO, BU], DO, "quiet for 600s"),
      (1, "triggered", "P3", [DO, BU], DO, "opened")]),
]


@pytest.mark.parametrize("steps, expected", [c[1:] for c in LIFECYCLE], ids=[c[0] for c in LIFECYCLE])
def test_lifecycle(steps, expected):
    _, published = play(steps)
    assert [revision(t) for t in published] == expected


def test_held_back_occurrences_are_counted_and_flushed():
    state, published = play([(0, FD), (10, FD), (20, FD)])
    assert len(published) == 1
    assert (state.ticket.occurrences, state.unpublished, state.ticket.last_seen) == (3, 2, T0 + 20)
    state, update = tick(state, RULES, T0 + 60)
    assert update is not None and update.occurrences == 3 and update.last_seen == T0 + 20
    assert state.unpublished == 0 and state.published_at == T0 + 60
    assert tick(state, RULES, T0 + 120) == (state, None)  # nothing new to flush


def test_resolution_is_timed_from_the_last_detection():
    state, published = play([(0, FD), (500, FD), (600, None), (1099, None), (1100, None)])
    assert [t.status for t in published] == [TicketStatus.TRIGGERED, TicketStatus.UPDATED, TicketStatus.RESOLVED]
    assert published[-1].ended_at == T0 + 1100 and not state.is_open


def test_new_incident_after_resolution_keeps_the_dedup_key_but_not_the_id():
    _, (first, resolved, second) = play([(0, FD), (600, None), (700, det(at=700))])
    assert resolved.incident_id == first.incident_id
    assert second.dedup_key == first.dedup_key == "model=churn|version=7"
    assert second.incident_id != first.incident_id
    assert (second.started_at, second.occurrences, second.ended_at) == (T0 + 700, 1, None)


def test_ticket_carries_runbook_labels_and_bounded_evidence():
    steps = [(i, det(at=i, feature="spend")) for i in range(MAX_DETECTIONS_KEPT + 10)]
    state, (opened,) = play(steps)
    assert opened.runbook == "https://emlops.dev/runbooks/feature-drift"
    assert opened.labels == {"model": "churn", "version": "7", "feature": "spend"}
    kept = state.ticket.detections
    assert len(kept) == MAX_DETECTIONS_KEPT and kept[-1]["event_time"] == T0 + MAX_DETECTIONS_KEPT + 9


def test_acknowledged_incident_stays_acknowledged_on_update():
    state, _ = play([(0, FD)])
    state = replace(state, ticket=replace(state.ticket, status=TicketStatus.ACKNOWLEDGED))
    _, (update,) = play([(10, det("performance_drift"))], state=state)
    assert update.status == TicketStatus.ACKNOWLEDGED and update.revision == 2


@pytest.mark.parametrize(
    "detection, key",
    [
        (det(), "model=churn|version=7"),
        (det(feature="spend", segment="eu"), "model=churn|version=7"),
        (det(version="8"), "model=churn|version=8"),
        (det("latency_spike"), "model=churn|version=7"),
        (det("infra_anomaly", metric="cpu", model="fraud-detector"), "source=fraud-api"),
        (det("pipeline_stale", source="etl", source_kind="pipeline"), "source=etl"),
    ],
)
def test_dedup_key_is_made_of_the_group_by_labels(detection, key):
    assert RULES.group(detection)[0] == key


def test_detection_without_its_group_root_is_refused():
    orphan = Detection(DetectionKind.INFRA_ANOMALY, {"metric": "cpu"}, 0.5, Severity.WARNING, T0, "test")
    with pytest.raises(ValueError, match="lacks the 'source' label"):
        route(orphan, None, RULES, T0)


# --- replay: the routing agent restarts from its stored table ------------------------------------------


def stored(state: IncidentState) -> IncidentState:
    """What the changelogged table gives back after a restart."""
    return IncidentState.from_dict(codec.loads(codec.dumps(state.to_dict())))


REPLAYED = [(0, det()), (10, det("confidence_drop", at=10)), (20, det(severity="critical", at=20))]


def test_stored_state_round_trips():
    state, _ = play(REPLAYED)
    assert stored(state) == state


def test_replay_against_the_stored_state_never_triggers_again():
    state, published = play(REPLAYED)
    replayed_state, again = play(REPLAYED, state=stored(state), replay_offset=30)
    assert [t.status for t in published].count(TicketStatus.TRIGGERED) == 1
    assert again == []  # the same detections again change nothing, not even the count
    assert replayed_state.ticket.occurrences == 3


def test_replay_after_losing_the_state_names_the_same_incident():
    _, first = play(REPLAYED)
    _, again = play(REPLAYED)
    assert [revision(t) for t in again] == [revision(t) for t in first]
    assert again[0].incident_id == first[0].incident_id


def test_replay_after_the_incident_resolved_does_not_trigger_it_again():
    state, published = play(REPLAYED + [(700, None)])
    assert published[-1].status == TicketStatus.RESOLVED
    _, again = play(REPLAYED[:1], state=stored(state), replay_offset=700)
    assert again == []


# --- priority: severity x catalogue tier -----------------------------------------------------------------


def rules_with_catalogue(tmp_path: Path, entries: str) -> Rules:
    """The shipped rules file with entries added under its [catalogue] header."""
    assert DEFAULT_TEXT.count("\n[catalogue]\n") == 1
    path = tmp_path / "rules.toml"
    path.write_text(DEFAULT_TEXT.replace("\n[catalogue]\n", f"\n[catalogue]\n{entries}\n"))
    return load_rules(path)


CATALOGUE = 'fraud-detector = { tier = 1, owner = "risk-ml" }\ntoy = { tier = 3 }'


@pytest.mark.parametrize(
    "model, severity, priority",
    [
        ("fraud-detector", "critical", "P1"),
        ("fraud-detector", "warning", "P2"),
        ("fraud-detector", "info", "P3"),
        ("churn", "critical", "P2"),  # not in the catalogue: default tier 2
        ("churn", "warning", "P3"),
        ("toy", "critical", "P3"),
        ("toy", "warning", "P4"),
        ("toy", "info", "P4"),
    ],
)
def test_catalogue_tier_sets_the_priority(tmp_path, model, severity, priority):
    rules = rules_with_catalogue(tmp_path, CATALOGUE)
    _, (opened,) = play([(0, det(severity=severity, model=model))], rules=rules)
    assert opened.priority == priority


def test_catalogue_tier_applies_to_escalation(tmp_path):
    rules = rules_with_catalogue(tmp_path, CATALOGUE)
    _, published = play([(0, det(model="fraud-detector")), (5, det(severity="critical", model="fraud-detector"))],
                        rules=rules)
    assert [(t.priority, t.update_reason) for t in published] == [("P2", "opened"), ("P1", "escalated to P1")]


def test_infra_anomaly_of_a_catalogued_model_opens_at_its_tier(tmp_path):
    rules = rules_with_catalogue(tmp_path, CATALOGUE)
    anomaly = det("infra_anomaly", "critical", metric="cpu", model="fraud-detector")
    _, published = play([(0, anomaly), (5, anomaly), (60, None)], rules=rules)
    assert [(t.priority, t.update_reason) for t in published] == [("P1", "opened"), ("P1", "1 more occurrence(s)")]


# --- rules: loading, overrides, validation --------------------------------------------------------------


def test_default_rules_cover_every_kind_with_a_runbook():
    assert set(RULES.rules) == set(DetectionKind)
    assert all(rule.runbook for rule in RULES.rules.values())
    assert (RULES.group_interval_s, RULES.resolve_after_s, RULES.default_tier) == (60.0, 600.0, 2)


def test_overrides_change_the_timings():
    rules = RULES.with_overrides(group_interval_s=5, resolve_after_s=30)
    _, published = play([(0, FD), (5, FD), (35, None)], rules=rules)
    assert [t.update_reason for t in published] == ["opened", "1 more occurrence(s)", "quiet for 30s"]


def test_manual_resolve_keeps_the_incident_open():
    data = default_data()
    data["rule"][0]["manual_resolve"] = True  # feature_drift
    state, published = play([(0, FD), (10_000, None)], rules=parse_rules(data))
    assert len(published) == 1 and state.is_open


def default_data() -> dict[str, Any]:
    return copy.deepcopy(_DEFAULT_DATA)


_DEFAULT_DATA = tomllib.loads(DEFAULT_TEXT)
Mutation = Callable[[dict[str, Any]], Any]


def rule(kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda data: next(r for r in data["rule"] if r["kind"] == kind)


FD_RULE, DQ_RULE = rule("feature_drift"), rule("data_quality")

BROKEN: list[tuple[str, Mutation, str]] = [
    ("unknown area", lambda d: FD_RULE(d).update(areas=["Marketing"]),
     r"rule #1 \(feature_drift\): 'Marketing' is not a valid Area"),
    ("unknown primary", lambda d: FD_RULE(d).update(primary="Sales"), r"rule #1 \(feature_drift\): 'Sales' is not"),
    ("empty areas", lambda d: DQ_RULE(d).update(areas=[]), r"rule #2 \(data_quality\): "),
    ("missing areas", lambda d: FD_RULE(d).pop("areas"), r"rule #1 \(feature_drift\): missing 'areas'"),
    ("missing kind", lambda d: FD_RULE(d).pop("kind"), r"rule #1 \(\?\): missing 'kind'"),
    ("unknown kind", lambda d: FD_RULE(d).update(kind="cpu_hot"), r"'cpu_hot' is not a valid DetectionKind"),
    ("kind without a rule", lambda d: d["rule"].remove(rule("latency_spike")(d)),
     r"no rule for detection kind\(s\) latency_spike"),
    ("no rules at all", lambda d: d.pop("rule"), r"no rule for detection kind\(s\) feature_drift, prediction_drift"),
    ("two rules for a kind", lambda d: d["rule"].append(dict(FD_RULE(d))),
     r"rule #11 \(feature_drift\): a second rule for the same kind"),
    ("primary not in areas", lambda d: DQ_RULE(d).update(primary="User"),
     r"rule #2 \(data_quality\): primary 'User' is not among its areas"),
    ("group_by not rooted", lambda d: FD_RULE(d).update(group_by=["version", "model"]),
     r"rule #1 \(feature_drift\): group_by must start with one of \('model', 'source'\)"),
    ("group_by empty", lambda d: FD_RULE(d).update(group_by=[]), r"group_by must start with one of"),
    ("group_by missing", lambda d: FD_RULE(d).pop("group_by"), r"group_by must start with one of"),
    ("unknown rule key", lambda d: FD_RULE(d).update(runbok="x"), r"unknown key\(s\) \['runbok'\]"),
    ("priority P0", lambda d: d["priority"].update(critical=["P0", "P1", "P2"]),
     r"\[priority\] critical must be a list of P1..P4, one per tier"),
    ("priority row not a list", lambda d: d["priority"].update(warning="P2"), r"\[priority\] warning must be a list"),
    ("priority row empty", lambda d: d["priority"].update(info=[]), r"\[priority\] info must be a list"),
    ("priority unknown severity", lambda d: d["priority"].update(urgent=["P1", "P1", "P1"]),
     r"\[priority\] has unknown severity 'urgent'"),
    ("priority missing severity", lambda d: d["priority"].pop("info"), r"\[priority\] lacks info"),
    ("catalogue tier too high", lambda d: d["catalogue"].update(toy={"tier": 4}),
     r"catalogue entry 'toy' needs a tier from 1 to 3"),
    ("catalogue entry not a table", lambda d: d["catalogue"].update(toy=1), r"catalogue entry 'toy' needs a tier"),
    ("tier beyond a short priority row", lambda d: (d["priority"].update(info=["P3", "P4"]),
                                                    d["catalogue"].update(toy={"tier": 3})),
     r"catalogue entry 'toy' needs a tier from 1 to 2"),
    ("default tier 0", lambda d: d["defaults"].update(default_tier=0), r"default_tier must be from 1 to 3"),
]


@pytest.mark.parametrize("mutate, message", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_rules_are_refused_with_a_clear_message(mutate, message):
    data = default_data()
    mutate(data)
    with pytest.raises(RulesError, match=message) as raised:
        parse_rules(data, "team.toml")
    assert str(raised.value).startswith("team.toml: ")


BROKEN_TYPES: list[tuple[str, Mutation]] = [
    ("[rule] as a table instead of [[rule]]", lambda d: d.update(rule={"kind": "feature_drift"})),
    ("catalogue tier not a number", lambda d: d["catalogue"].update(toy={"tier": "high"})),
    ("group_interval_s not a number", lambda d: d["defaults"].update(group_interval_s="soon")),
]


@pytest.mark.parametrize("mutate", [c[1] for c in BROKEN_TYPES], ids=[c[0] for c in BROKEN_TYPES])
def test_wrongly_typed_rules_are_refused_with_a_clear_message(mutate):
    data = default_data()
    mutate(data)
    with pytest.raises(RulesError, match="team.toml: "):
        parse_rules(data, "team.toml")


def test_load_rules_refuses_bad_toml_naming_the_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(DEFAULT_TEXT + "\n[[rule]\nkind = \n")
    with pytest.raises(RulesError, match=rf"{path}: not valid TOML"):
        load_rules(path)


def test_load_rules_names_the_file_in_rule_errors(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(DEFAULT_TEXT.replace('primary = "Data Operations"', 'primary = "User"', 1))
    with pytest.raises(RulesError, match=rf"{path}: rule #1 \(feature_drift\): primary 'User' is not among"):
        load_rules(path)
