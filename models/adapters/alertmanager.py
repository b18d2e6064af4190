"""A ticket revision as the Alertmanager webhook payload (``version: "4"``), one alert per incident.

Receivers written for Alertmanager (chat bridges, ticketing hooks, Karma...) read it unchanged:
``status`` is ``firing`` until the incident resolves; ``fingerprint`` is the incident id, so every revision of
one incident is the same alert; ``startsAt`` is when it opened and ``endsAt`` when it resolved, or
Alertmanager's zero time ``0001-01-01T00:00:00Z`` while it is open. Labels are the ticket's entity labels plus
``alertname`` (the first detection kind), ``severity``, ``priority``, ``area`` (primary) and ``areas``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

ZERO_TIME = "0001-01-01T00:00:00Z"
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _label_name(name: str) -> str:
    clean = _LABEL_NAME.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def alert(ticket: Mapping[str, Any], extra_labels: Mapping[str, str] | None = None,
          generator_url: str = "") -> dict[str, Any]:
    resolved = ticket["status"] == "resolved"
    labels = {_label_name(k): str(v) for k, v in ticket["labels"].items()}
    labels.update({
        "alertname": ticket["kinds"][0] if ticket["kinds"] else "emlops_incident",
        "severity": ticket["severity"],
        "priority": ticket["priority"],
        "area": ticket["primary_area"],
        "areas": ",".join(ticket["areas"]),
        "dedup_key": ticket["dedup_key"],
    })
    for k, v in (extra_labels or {}).items():
        labels.setdefault(_label_name(k), str(v))
    annotations = {
        "summary": ticket["summary"],
        "description": f"{ticket['status']} (revision {ticket['revision']}, {ticket['occurrences']} occurrence(s)): "
                       f"{ticket['update_reason']}; kinds: {', '.join(ticket['kinds'])}",
        "incident_id": ticket["incident_id"],
        "revision": str(ticket["revision"]),
        "ticket_status": ticket["status"],
    }
    if ticket.get("runbook"):
        annotations["runbook_url"] = ticket["runbook"]
    ended = ticket.get("ended_at")
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(ticket["started_at"]),
        "endsAt": rfc3339(ended if ended is not None else ticket["last_seen"]) if resolved else ZERO_TIME,
        "generatorURL": generator_url,
        "fingerprint": ticket["incident_id"],
    }


def webhook_payload(
    ticket: Mapping[str, Any],
    receiver: str,
    external_url: str = "",
    extra_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The body Alertmanager POSTs to a ``webhook_config`` URL, for one ticket revision."""
    one = alert(ticket, extra_labels, generator_url=external_url)
    group_labels = {"dedup_key": ticket["dedup_key"]}
    return {
        "version": "4",
        "groupKey": '{}:{dedup_key="' + ticket["dedup_key"].replace('"', '\\"') + '"}',
        "truncatedAlerts": 0,
        "status": one["status"],
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": dict(one["labels"]),
        "commonAnnotations": dict(one["annotations"]),
        "externalURL": external_url,
        "alerts": [one],
    }
