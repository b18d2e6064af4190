"""Operator actions, silences, upstream causes and CloudEvents headers, with an injected clock."""

from __future__ import annotations

import pytest

from models.cloudevents import ticket_headers
from models.routing import RoutingContext, act, is_area_correction, load_rules, route, tick
from models.schema import (
    ActionKind,
    Area,
    Detection,
    DetectionKind,
    InvalidEvent,
    OperatorAction,
    Severity,
    Silence,
    TicketStatus,
)
from models.silences import matches, muting, validate

RULES = load_rules()
T0 = 1_700_000_000.0
KEY = "model=churn|version=7"


def drift(at: float, feature: str = "spend") -> Detection:
    return Detection(DetectionKind.FEATURE_DRIFT, {"model": "churn", "version": "7", "feature": feature}, 0.5,
                     Severity.WARNING, T0 + at, "test", summary=f"{feature} drifted")


def action(kind: ActionKind, at: float, by: str = "alice", comment: str = "", areas: tuple[Area, ...] = ()):
    return OperatorAction(kind, KEY, by, T0 + at, comment, areas)


def test_acknowledge_then_resolve_is_a_revision_each_and_repeats_are_ignored():
    state, opened = route(drift(0), None, RULES, T0)
    state, acked = act(state, action(ActionKind.ACKNOWLEDGE, 5, comment="on it"), T0 + 5)
    assert (acked.revision, acked.status, acked.acknowledged_by) == (2, TicketStatus.ACKNOWLEDGED, "alice")
    assert acked.update_reason == "acknowledge by alice: on it"
    assert act(state, action(ActionKind.ACKNOWLEDGE, 6, by="bob"), T0 + 6)[1] is None
    # A new detection while acknowledged keeps the acknowledgement.
    state, updated = route(drift(10, "tenure"), state, RULES, T0 + 10)
    assert updated.status == TicketStatus.ACKNOWLEDGED and updated.labels["feature"] == "spend,tenure"
    state, resolved = act(state, action(ActionKind.RESOLVE, 20, by="bob"), T0 + 20)
    assert (resolved.status, resolved.ended_at, resolved.revision) == (TicketStatus.RESOLVED, T0 + 20, 4)
    assert [a["action"] for a in resolved.actions] == ["acknowledge", "resolve"]
    assert act(state, action(ActionKind.RESOLVE, 21), T0 + 21)[1] is None
    assert tick(state, RULES, T0 + 10_000)[1] is None


def test_correcting_areas_replaces_them_and_is_recognised_as_a_correction():
    state, _ = route(drift(0), None, RULES, T0)
    state, corrected = act(state, action(ActionKind.CORRECT_AREAS, 3, areas=(Area.USER, Area.DATA_OPERATIONS)),
                           T0 + 3)
    assert corrected.areas == (Area.USER, Area.DATA_OPERATIONS) and corrected.primary_area == Area.USER
    assert corrected.status == TicketStatus.UPDATED
    assert corrected.actions[-1]["previous_areas"] == ["Data Operations", "Business"]
    assert is_area_correction(corrected)
    _, commented = act(state, action(ActionKind.COMMENT, 4, comment="fixed upstream"), T0 + 4)
    assert not is_area_correction(commented) and commented.update_reason == "comment by alice: fixed upstream"


def test_action_decoding_rejects_what_it_cannot_apply():
    with pytest.raises(InvalidEvent, match="non-empty 'areas'"):
        OperatorAction.from_dict({"action": "correct_areas", "dedup_key": KEY, "by": "a", "at": 1})
    with pytest.raises(InvalidEvent, match="'snooze' is not a valid ActionKind"):
        OperatorAction.from_dict({"action": "snooze", "dedup_key": KEY, "by": "a", "at": 1})
    assert OperatorAction.from_dict(action(ActionKind.RESOLVE, 1).to_dict()) == action(ActionKind.RESOLVE, 1)


SILENCES = [
    Silence("exact", {"model": "churn"}, "ops", T0, T0 + 100),
    Silence("regex", {"model": "~ch.*", "feature": "tenure"}, "ops", T0, T0 + 100),
    Silence("later", {"model": "churn"}, "ops", T0 + 50, T0 + 100),
    Silence("other", {"source": "fraud-api"}, "ops", T0, None, until_resolved=True),
]


@pytest.mark.parametrize("labels, at, expected", [
    ({"model": "churn", "feature": "spend"}, 10, ("exact",)),
    ({"model": "churn", "feature": "spend,tenure"}, 10, ("exact", "regex")),
    ({"model": "churn", "feature": "tenure"}, 60, ("exact", "later", "regex")),
    ({"model": "churn"}, 100, ()),  # expired
    ({"model": "chess", "feature": "tenure"}, 10, ("regex",)),
    ({"source": "fraud-api"}, 1e6, ("other",)),
])
def test_silences_match_labels_within_their_time(labels, at, expected):
    assert muting(SILENCES, labels, T0 + at) == expected


def test_silenced_incidents_are_still_published_but_marked():
    context = RoutingContext(silences=tuple(SILENCES[:1]))
    state, opened = route(drift(0), None, RULES, T0, context)
    assert opened.silenced_by == ("exact",)
    _, later = route(drift(200, "tenure"), state, RULES, T0 + 200, context)
    assert later.silenced_by == ()  # the silence expired


def test_a_silence_with_a_broken_regex_is_refused_and_one_without_end_needs_until_resolved():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        validate(Silence("bad", {"model": "~(unclosed"}, "ops", T0, T0 + 1))
    with pytest.raises(InvalidEvent, match="'expires_at' or 'until_resolved'"):
        Silence.from_dict({"id": "x", "matchers": {"a": "b"}, "created_by": "ops", "starts_at": 1})
    assert not matches(SILENCES[0], {"model": "churn"}, T0 - 1)


def test_an_open_upstream_incident_is_linked_as_the_cause():
    cause = {"incident_id": "abc", "dedup_key": "source=feature-pipeline", "summary": "pipeline stale"}
    state, opened = route(drift(0), None, RULES, T0, RoutingContext(causes=(cause,)))
    assert opened.caused_by == (cause,)
    other = {"incident_id": "def", "dedup_key": "source=api", "summary": "api anomalous"}
    _, updated = route(drift(5, "tenure"), state, RULES, T0 + 5, RoutingContext(causes=(other,)))
    assert updated.caused_by == (cause, other) and "explained by api anomalous" in updated.update_reason


def test_learned_areas_are_added_to_the_rules_areas():
    _, opened = route(drift(0), None, RULES, T0, RoutingContext(learned_areas=(Area.USER,)))
    assert opened.areas == (Area.DATA_OPERATIONS, Area.BUSINESS, Area.USER)


def test_cloudevents_binary_mode_headers():
    _, opened = route(drift(0), None, RULES, T0)
    headers = dict(ticket_headers(opened, "/emlops/test"))
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == f"{opened.incident_id}-1".encode()
    assert headers["ce_type"] == b"dev.emlops.incident.triggered"
    assert headers["ce_subject"] == KEY.encode()
    assert headers["ce_time"] == b"2023-11-14T22:13:20Z"
    assert headers["content-type"] == b"application/json"


def test_group_wait_gathers_the_first_detections_into_revision_one():
    rules = RULES.with_overrides(group_wait_s=30)
    state, first = route(drift(0), None, rules, T0)
    assert first is None and state.waiting
    state, second = route(drift(10, "tenure"), state, rules, T0 + 10)
    assert second is None
    assert tick(state, rules, T0 + 29)[1] is None
    state, opened = tick(state, rules, T0 + 30)
    assert (opened.revision, opened.status, opened.labels["feature"]) == (1, TicketStatus.TRIGGERED, "spend,tenure")
    assert opened.occurrences == 2 and not state.waiting


def test_repeat_interval_reminds_that_an_incident_is_still_open():
    rules = RULES.with_overrides(repeat_interval_s=3600, resolve_after_s=10**6)
    state, _ = route(drift(0), None, rules, T0)
    assert tick(state, rules, T0 + 3599)[1] is None
    state, reminder = tick(state, rules, T0 + 3600)
    assert (reminder.revision, reminder.status, reminder.update_reason) == (2, TicketStatus.UPDATED,
                                                                            "still open after 3600s")
    assert tick(state, rules, T0 + 3601)[1] is None
