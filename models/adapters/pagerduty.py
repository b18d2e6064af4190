"""A ticket revision as a PagerDuty Events API v2 alert event (``POST /v2/enqueue``).

``triggered`` and ``updated`` revisions send ``trigger`` (PagerDuty adds a log entry to the open alert with
the same ``dedup_key``), ``acknowledged`` sends ``acknowledge`` and ``resolved`` sends ``resolve``; the last
two carry only ``routing_key``, ``dedup_key`` and ``event_action``, as the API specifies. The ticket's
dedup key is the PagerDuty ``dedup_key`` (hashed when it exceeds the API's 255 characters), so a resolve
always finds its trigger, and a later incident under the same key opens a new alert, as emlops does.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from models.adapters.alertmanager import rfc3339

ACTIONS = {"triggered": "trigger", "updated": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


def dedup_key(ticket: Mapping[str, Any]) -> str:
    key = str(ticket["dedup_key"])
    if len(key) <= MAX_DEDUP_KEY:
        return key
    return "emlops-" + hashlib.sha256(key.encode()).hexdigest()


def _source(labels: Mapping[str, str]) -> str:
    if "model" in labels:
        version = f" v{labels['version']}" if "version" in labels else ""
        return f"model {labels['model']}{version}"
    if "source" in labels:
        return labels["source"]
    return "emlops"


def event(
    ticket: Mapping[str, Any],
    routing_key: str,
    client: str = "emlops",
    client_url: str | None = None,
    extra_details: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Events API v2 body for one ticket revision."""
    action = ACTIONS[ticket["status"]]
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(ticket)}
    if action != "trigger":
        return body
    labels = ticket["labels"]
    summary = f"[{ticket['priority']}] {ticket['summary']}"
    details = {
        "incident_id": ticket["incident_id"],
        "priority": ticket["priority"],
        "areas": ticket["areas"],
        "primary_area": ticket["primary_area"],
        "kinds": ticket["kinds"],
        "labels": labels,
        "revision": ticket["revision"],
        "status": ticket["status"],
        "occurrences": ticket["occurrences"],
        "update_reason": ticket["update_reason"],
        **(extra_details or {}),
    }
    if ticket.get("detections"):
        details["latest_evidence"] = ticket["detections"][-1].get("evidence", {})
    body["payload"] = {
        "summary": summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 1] + "…",
        "source": _source(labels),
        "severity": SEVERITIES.get(ticket["severity"], "error"),
        "timestamp": rfc3339(ticket["last_seen"]),
        "component": labels.get("feature") or labels.get("metric") or labels.get("model") or labels.get("source"),
        "group": ticket["primary_area"],
        "class": ticket["kinds"][0] if ticket["kinds"] else "incident",
        "custom_details": details,
    }
    body["client"] = client
    if client_url:
        body["client_url"] = client_url
    if ticket.get("runbook"):
        body["links"] = [{"href": ticket["runbook"], "text": "Runbook"}]
    return body
