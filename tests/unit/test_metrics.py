"""The worker's counters: dict-like tallies for the agents, mirrored into a parseable Prometheus page."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.metrics import Metrics
from models.schema import Area, Severity, Ticket, TicketStatus


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(m.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _ticket(status: TicketStatus = TicketStatus.TRIGGERED) -> Ticket:
    return Ticket(
        incident_id="i1", dedup_key="model=m|version=1", revision=1, status=status, severity=Severity.WARNING,
        priority="P2", areas=(Area.DATA_OPERATIONS, Area.BUSINESS), primary_area=Area.DATA_OPERATIONS,
        summary="s", labels={"model": "m", "version": "1"}, kinds=(), started_at=1.0, last_seen=1.0,
        occurrences=1, update_reason="opened",
    )


def test_agent_call_sites_count_into_prometheus_and_stay_readable_as_dicts() -> None:
    m = Metrics()
    m.consumed["emlops.predictions"] += 3
    m.consumed["emlops.predictions"] += 2
    m.dead_lettered["emlops.infrastructure"] += 1
    m.detections["feature_drift"] += 4
    samples = _samples(m)
    assert samples[("emlops_events_consumed_total", (("topic", "emlops.predictions"),))] == 5
    assert samples[("emlops_dead_lettered_total", (("topic", "emlops.infrastructure"),))] == 1
    assert samples[("emlops_detections_total", (("kind", "feature_drift"),))] == 4
    assert m.snapshot()["consumed"] == {"emlops.predictions": 5}
    assert not any(name.endswith("_created") for name, _ in samples)


def test_a_tally_refuses_to_go_down() -> None:
    m = Metrics()
    m.consumed["t"] += 2
    with pytest.raises(ValueError, match="cannot go down"):
        m.consumed["t"] -= 1


def test_a_published_ticket_counts_by_status_area_and_priority_and_times_its_latency() -> None:
    m = Metrics()
    m.ticket_published(_ticket(), event_time=100.0, now=101.5)
    m.ticket_published(_ticket(TicketStatus.ACKNOWLEDGED))  # an operator's revision: no latency
    samples = _samples(m)
    assert samples[("emlops_ticket_revisions_total", (("status", "triggered"),))] == 1
    assert samples[("emlops_ticket_revisions_total", (("status", "acknowledged"),))] == 1
    for area in ("Data Operations", "Business"):
        key = ("emlops_tickets_total", (("area", area), ("priority", "P2"), ("status", "triggered")))
        assert samples[key] == 1
    assert samples[("emlops_processing_latency_seconds_count", ())] == 1
    assert samples[("emlops_processing_latency_seconds_sum", ())] == pytest.approx(1.5)
    assert samples[("emlops_processing_latency_seconds_bucket", (("le", "1.0"),))] == 0
    assert samples[("emlops_processing_latency_seconds_bucket", (("le", "2.5"),))] == 1
