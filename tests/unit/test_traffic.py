"""The demo traffic, end to end without Kafka: every injected incident is detected, after its onset only, and
routed to tickets whose experience areas cover all four."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from app.traffic import INCIDENTS, PREDICTIONS, Injected, Traffic
from models.fleet import ModelFleet, ServiceFleet
from models.routing import IncidentState, load_rules, route, tick
from models.schema import Area, Detection, InfraEvent, Ticket, decode_prediction_topic

START = 1_700_000_000.0
STEPS = 3000
ONSET = 0.5
ONSET_TIME = START + STEPS * ONSET  # the fake clock advances one second per round


@dataclass(frozen=True)
class Run:
    detections: list[Detection]
    events: int


def run_traffic(seed: int) -> Run:
    clock = itertools.count(START)
    traffic = Traffic(steps=STEPS, onset=ONSET, seed=seed, clock=lambda: float(next(clock)))
    models, services = ModelFleet(), ServiceFleet()
    detections: list[Detection] = []
    events = 0
    for topic, _key, event in traffic:
        events += 1
        if topic == PREDICTIONS:
            detections += models.observe(decode_prediction_topic(event))
        else:
            detections += services.observe(InfraEvent.from_dict(event))
    return Run(detections, events)


@pytest.fixture(scope="module", params=[7, 1], ids=["seed7", "seed1"])
def run(request) -> Run:
    return run_traffic(request.param)


def concerns(thing: Detection | Ticket, injected: Injected) -> bool:
    labels = thing.entity if isinstance(thing, Detection) else thing.labels
    kinds = (thing.kind,) if isinstance(thing, Detection) else thing.kinds
    return injected.kind in {k.value for k in kinds} and injected.entity in (labels.get("model"), labels.get("source"))


def test_traffic_is_seeded():
    clock = itertools.count(START)
    first = list(Traffic(steps=200, clock=lambda: float(next(clock))))
    clock = itertools.count(START)
    assert list(Traffic(steps=200, clock=lambda: float(next(clock)))) == first


@pytest.mark.parametrize("params", [{"steps": 99}, {"onset": 0}, {"onset": 1}])
def test_traffic_rejects_bad_parameters(params):
    with pytest.raises(ValueError):
        Traffic(**params)


@pytest.mark.parametrize("injected", INCIDENTS, ids=[i.name for i in INCIDENTS])
def test_every_injected_incident_is_detected_after_its_onset(run, injected):
    times = [d.event_time for d in run.detections if concerns(d, injected)]
    assert times, f"{injected.name} on {injected.entity} was not detected"
    assert min(times) >= ONSET_TIME
    assert min(times) < ONSET_TIME + 200  # found within 200 rounds of the onset


def test_nothing_is_detected_before_the_onset(run):
    early = [(d.event_time - START, d.kind.value, d.entity) for d in run.detections if d.event_time < ONSET_TIME]
    assert early == []
    assert run.events > STEPS * 5  # the run did produce traffic: predictions, labels and infrastructure


def route_all(detections: list[Detection], tick_every: float = 5.0) -> dict[str, Ticket]:
    """Route detections in event-time order with periodic ticks; return the latest revision per dedup key."""
    rules = load_rules()
    states: dict[str, IncidentState] = {}
    latest: dict[str, Ticket] = {}
    ordered = sorted(detections, key=lambda d: d.event_time)
    for d in ordered:
        key = rules.group(d)[0]
        states[key], ticket = route(d, states.get(key), rules, d.event_time)
        if ticket is not None:
            latest[key] = ticket
    now = ordered[-1].event_time
    end = now + rules.resolve_after_s
    while now <= end:
        now += tick_every
        for key, state in states.items():
            states[key], ticket = tick(state, rules, now)
            if ticket is not None:
                latest[key] = ticket
    return latest


def test_routed_tickets_cover_every_experience_area(run):
    tickets = route_all(run.detections)
    assert {area for t in tickets.values() for area in t.areas} == set(Area)


@pytest.mark.parametrize("injected", INCIDENTS, ids=[i.name for i in INCIDENTS])
def test_each_incident_has_one_ticket_with_its_areas_that_resolves(run, injected):
    tickets = [t for t in route_all(run.detections).values() if concerns(t, injected)]
    assert len(tickets) == 1
    ticket = tickets[0]
    assert set(injected.areas) <= {a.value for a in ticket.areas}
    assert ticket.status.value == "resolved"
