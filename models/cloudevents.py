"""CloudEvents 1.0 binary mode for Kafka: the ticket JSON is the message value, the context goes in headers.

Binary mode keeps the value a plain ticket document, so a consumer that knows nothing of CloudEvents
reads the same JSON, while CloudEvents-aware routers (Knative, Argo Events…) see type, source and id.
"""

from __future__ import annotations

from datetime import datetime, timezone

from models.schema import Ticket

SPEC_VERSION = "1.0"
TYPE_PREFIX = "dev.emlops.incident."


def ticket_headers(ticket: Ticket, source: str) -> list[tuple[str, bytes]]:
    """Kafka protocol binding: ``ce_`` prefixed attributes and ``content-type``."""
    time = datetime.fromtimestamp(ticket.last_seen if ticket.ended_at is None else ticket.ended_at, timezone.utc)
    attributes = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": f"{ticket.incident_id}-{ticket.revision}",
        "ce_source": source,
        "ce_type": TYPE_PREFIX + ticket.status.value,
        "ce_subject": ticket.dedup_key,
        "ce_time": time.isoformat().replace("+00:00", "Z"),
        "content-type": "application/json",
    }
    return [(name, value.encode()) for name, value in attributes.items()]
