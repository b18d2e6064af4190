"""The ops views on the worker's Faust web server.

- ``/dashboard/``: the dashboard (HTML, JS and CSS shipped in this package; no CDN).
- ``/api/v1/...``: the JSON API, described by ``/api/v1/openapi.json``.
- ``/metrics`` (Prometheus text format), ``/health`` and ``/ready``.

Reads answer from this worker's partitions and gather the others' (see :mod:`agents.web.cluster`).
Actions are events: they go to the detections topic (incidents) or the silences topic, so they survive a
restart and reach the worker that owns the incident; the API answers ``202 Accepted``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from importlib import resources
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlencode

from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agents import infrastructure, predictions
from agents.intake import intake
from agents.metrics import metrics
from agents.routing import expire_silence, submit_action, submit_silence
from agents.web.auth import Access, Decision
from agents.web.cluster import ROUTED_FROM_HEADER, WORKER_HEADER, Cluster, partition_of, same_worker
from agents.web.collectors import WorkerCollector, faust_lag
from agents.web.queries import IncidentFilter, merge, select, silence_view
from agents.web.series import SeriesStore
from app.faust_app import app, incidents_table, settings, silences_table
from app.kafka_access import _AUTH_KEYS, _servers
from app.topics import MODEL_FLEET, SOURCE_FLEET
from models import codec
from models.schema import ActionKind, InvalidEvent, OperatorAction, Silence

log = logging.getLogger(__name__)

API = "/api/v1"
SAMPLE_INTERVAL_S = 2.0  # with 900 points: the last 30 minutes
DEFAULT_POINTS, MAX_POINTS = 120, 900
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
INPUT_TOPICS = (settings.topics.predictions, settings.topics.infrastructure, settings.topics.detections)

access = Access(settings.api_token, settings.api_reads)
cluster = Cluster(app, incidents_table, settings.partitions, inputs=intake.assignment)
series = SeriesStore(points=900)
started_at = time.time()


# --- what this worker holds ---------------------------------------------------------------------------


def owned_incidents() -> Iterator[Mapping[str, Any]]:
    """Table values of the keys whose partition this worker owns (the memory store also holds standbys)."""
    mine = cluster.owned_partitions()
    for key, stored in list(incidents_table.items()):
        if isinstance(stored, dict) and partition_of(key, settings.partitions) in mine:
            yield stored


def jsonable(value: Any) -> Any:
    """Monitor state as JSON: string keys, lists, finite numbers (else null), anything else as text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _state(monitor: Any) -> dict[str, Any]:
    """``state()`` of a monitor, defensively: another engineer's monitor may change shape or fail."""
    try:
        state = monitor.state()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return jsonable(state) if isinstance(state, Mapping) else {"value": jsonable(state)}


def _model_key(key: Any) -> tuple[str, str, str | None]:
    model, version, segment = (tuple(key) + (None, None, None))[:3]
    return str(model), str(version), None if segment is None else str(segment)


def model_monitors() -> Iterator[tuple[str, tuple[str, str, str | None], Any]]:
    for key, monitor in list(predictions.fleet.monitors.items()):
        model, version, segment = _model_key(key)
        yield f"model:{model}|{version}|{segment or ''}", (model, version, segment), monitor


def service_monitors() -> Iterator[tuple[str, tuple[str, str], Any]]:
    for key, monitor in list(infrastructure.fleet.monitors.items()):
        source, kind = (tuple(key) + (None, None))[:2]
        yield f"service:{source}|{kind}", (str(source), str(kind)), monitor


def fleets() -> dict[str, Any]:
    return {"models": predictions.fleet.monitors, "label_joins": predictions.fleet.joins,
            "services": infrastructure.fleet.monitors}


class BrokerProbe:
    """Whether the brokers answer a Kafka request, asked on a timer over one connection
    authenticated as the worker's clients are, so ``/health`` and ``/ready`` answer at once from the last
    result. Faust's own clients only retry in their logs while the brokers are gone, and reconnect by
    themselves when they are back; this is how the probes see the outage."""

    def __init__(self, s: Any, timeout_s: float) -> None:
        options = s.kafka_client_options()
        self.auth = {key: value for key, value in options.items() if key in _AUTH_KEYS}
        self.servers = _servers(s.bootstrap)
        self.timeout_s = timeout_s
        self.reachable: bool | None = None  # None until the first answer or failure
        self.error: str | None = None
        self.checked_at: float | None = None
        self.since = time.time()  # of the current state
        self._conn: Any = None  # an aiokafka AIOKafkaConnection (untyped)

    async def check(self) -> bool:
        """One metadata request over the kept connection, or over a new one to the first server that takes it."""
        error = None
        for host, port in self.servers if self._conn is None else [(self._conn.host, self._conn.port)]:
            try:
                conn = self._conn
                if conn is None or not conn.connected():
                    conn = await asyncio.wait_for(create_conn(
                        host, port, request_timeout_ms=int(self.timeout_s * 1000), **self.auth), self.timeout_s)
                    self._conn = conn
                await asyncio.wait_for(conn.send(MetadataRequest([])), self.timeout_s)
                error = None
                break
            except Exception as exc:  # refused, timed out, closed, or anything else: a probe must not crash
                error = f"{host}:{port}: {type(exc).__name__}: {exc}".rstrip(": ")
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
        self._record(error is None, error)
        return error is None

    def _record(self, reachable: bool, error: str | None) -> None:
        now = time.time()
        if reachable != self.reachable:
            if reachable is False or self.reachable is False:
                log.warning("Kafka brokers %s", "reachable again" if reachable else f"unreachable: {error}")
            self.since = now
        self.reachable, self.error, self.checked_at = reachable, error, now

    def view(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "since": self.since, "checked_at": self.checked_at,
                **({"error": self.error} if self.error else {})}


BROKER_PROBE_INTERVAL_S = 2.0
broker = BrokerProbe(settings, timeout_s=5.0)


@app.timer(interval=BROKER_PROBE_INTERVAL_S)
async def probe_broker() -> None:
    await broker.check()


class _ReliabilityGauges:
    """Broker reachability, and the memory a burst fills that the monitored-keys gauges do not show."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("emlops_broker_reachable", "1 when the last probe of the Kafka brokers got an "
                                "answer, 0 when it did not (every 2 s).", value=0 if broker.reachable is False else 1)
        yield GaugeMetricFamily("emlops_pending_labels", "Predictions waiting in the label joins for their label "
                                "(at most monitor pending_max per model).", value=predictions.fleet.pending_labels())
        unacked = GaugeMetricFamily("emlops_unacked_events", "Input events processed since the last checkpoint "
                                    "saved their effects (a crash reads them again), by agent.", labels=["agent"])
        for name, fleet in (("predictions", MODEL_FLEET), ("infrastructure", SOURCE_FLEET)):
            unacked.add_metric([name], intake.fleets[fleet].unsaved)
        yield unacked
        keys = CounterMetricFamily("emlops_checkpoint_keys", "Monitor snapshots saved, keys restored from one, "
                                   "snapshots that did not restore (their keys started afresh), snapshots "
                                   "deleted with their evicted key, re-read events skipped as already in a "
                                   "restored key's state, and snapshots too large to store, by fleet.",
                                   labels=["fleet", "event"])
        for name, fleet in intake.fleets.items():
            for event in ("saved", "restored", "refused", "evicted", "skipped", "oversized"):
                keys.add_metric([name, event], getattr(fleet.watcher, event))
        yield keys


metrics.registry.register(_ReliabilityGauges())


def readiness() -> tuple[bool, list[str]]:
    reasons = []
    if broker.reachable is None:
        reasons.append("Kafka brokers not probed yet")
    elif broker.reachable is False:
        reasons.append(f"Kafka brokers unreachable for {time.time() - broker.since:.0f} s: {broker.error}")
    if app.crashed:
        reasons.append(f"crashed: {app.crash_reason!r}")
    if not app.started:
        reasons.append("starting")
    recovery = getattr(app.tables, "recovery", None)
    if recovery is None:
        reasons.append("tables not started")
    elif not recovery.completed.is_set():
        reasons.append("recovering tables")
    if app.rebalancing:
        reasons.append("rebalancing")
    reasons.extend(intake.not_ready())
    return not reasons, reasons


metrics.registry.register(WorkerCollector(
    lag=lambda: {**faust_lag(app, (settings.topics.detections, settings.topics.silences)),
                 **{(tp.topic, tp.partition): n for tp, n in intake.lag().items()}},
    fleets=fleets,
    open_tickets=lambda: (s["ticket"] for s in owned_incidents()
                          if isinstance(s.get("ticket"), dict) and s["ticket"].get("status") != "resolved"),
    silences=lambda: list(silences_table.values()),
    ready=lambda: readiness()[0],
))


@app.timer(interval=SAMPLE_INTERVAL_S)
async def sample_monitors() -> None:
    """One point per monitored statistic for the sparklines."""
    now = time.time()
    states: list[tuple[str, Mapping[str, Any]]] = []
    monitors: Iterator[tuple[str, Any, Any]] = itertools.chain(model_monitors(), service_monitors())
    for key, _, monitor in monitors:
        if series.wants(key):  # state() is not free: only for the monitors whose series are kept
            states.append((key, _state(monitor)))
    series.sample(now, states)


# --- the base view ----------------------------------------------------------------------------------


class BadRequest(Exception):
    pass


class OpsView(web.View):
    def answer(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
        return self.bytes(codec.dumps(data), content_type="application/json", status=status,
                          headers={WORKER_HEADER: cluster.me, **(headers or {})})

    def problem(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> web.Response:
        return self.answer({"error": reason, "status": status}, status, headers)

    def _denied(self, decision: Decision) -> web.Response | None:
        if decision.allowed:
            return None
        headers = {"WWW-Authenticate": 'Bearer realm="emlops"'} if decision.status == 401 else {}
        return self.problem(decision.status, decision.reason, headers)

    def unreadable(self, request: web.Request) -> web.Response | None:
        return self._denied(access.read(getattr(request, "remote", None), request.headers))

    def unactionable(self, request: web.Request) -> web.Response | None:
        return self._denied(access.act(request.headers))

    async def json_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if len(raw) > 64 * 1024:
            raise BadRequest("the request body is larger than 64 KiB")
        try:
            body = codec.loads(raw) if raw else {}
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    async def to_owner(self, request: web.Request, key: str) -> web.Response | None:
        """None when this worker owns ``key``; else the owner's answer to the same request."""
        owner = cluster.owner(key.encode())
        if owner is None:
            return self.problem(503, "partitions are not assigned yet", {"Retry-After": "1"})
        if same_worker(owner, cluster.me):
            return None
        if ROUTED_FROM_HEADER in request.headers:  # the workers disagree while a rebalance settles
            return self.problem(503, "the incident's partition is moving between workers", {"Retry-After": "1"})
        try:
            status, body, headers = await cluster.forward(owner, request)
        except Exception as exc:
            return self.problem(502, f"the worker that owns this incident ({owner}) did not answer: "
                                     f"{type(exc).__name__}")
        return self.bytes(body, status=status, headers={**headers, ROUTED_FROM_HEADER: cluster.me})

    async def gather(self, request: web.Request, path: str, local: dict[str, Any]) -> list[dict[str, Any]]:
        """This worker's answer plus the other workers' (``scope=local``), each marked with its worker."""
        answers = [{**local, "worker": cluster.me, "ok": True}]
        if request.query.get("scope") == "local":
            return answers
        query = urlencode({**request.query, "scope": "local"})
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        elif settings.api_token:  # the reader passed here; workers on other hosts trust the shared token
            headers["Authorization"] = f"Bearer {settings.api_token}"
        others = cluster.workers()[1:]
        results = await asyncio.gather(*(cluster.fetch(url, f"{path}?{query}", headers) for url in others))
        for url, (status, body) in zip(others, results):
            if status == 200 and isinstance(body, dict):
                answers.append({**body, "worker": url, "ok": True})
            else:
                reason = body.get("error") if isinstance(body, dict) else body
                answers.append({"worker": url, "ok": False, "error": f"{status or 'no answer'}: {reason}"})
        return answers

    @staticmethod
    def workers_of(answers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"url": a["worker"], "ok": a["ok"], **({"error": a["error"]} if "error" in a else {})}
                for a in answers]


def _points(query: Mapping[str, str]) -> int:
    try:
        points = int(query.get("points", DEFAULT_POINTS))
    except ValueError:
        raise BadRequest("'points' must be an integer") from None
    if not 2 <= points <= MAX_POINTS:
        raise BadRequest(f"'points' must be from 2 to {MAX_POINTS}")
    return points


def _flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value in (None, ""):
        return default
    if value not in ("true", "false", "1", "0"):
        raise BadRequest(f"'{name}' must be true or false")
    return value in ("true", "1")


# --- incidents --------------------------------------------------------------------------------------


@app.page(API + "/incidents")
class Incidents(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        try:
            where = IncidentFilter.from_query(request.query)
        except ValueError as exc:
            return self.problem(400, str(exc))
        items, matched = select(owned_incidents(), where)
        for item in items:
            item["worker"] = cluster.me
        answers = await self.gather(request, API + "/incidents", {"incidents": items, "matched": matched})
        incidents, total = merge(((a["incidents"], a["matched"]) for a in answers if a["ok"]), where.limit)
        return self.answer({"incidents": incidents, "matched": total, "generated_at": time.time(),
                            "partial": not all(a["ok"] for a in answers), "workers": self.workers_of(answers)})


@app.page(API + "/incidents/{key}")
class Incident(OpsView):
    async def get(self, request: web.Request, key: str) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        if routed := await self.to_owner(request, key):
            return routed
        stored = incidents_table.get(key.encode())
        if not stored:
            return self.problem(404, f"no incident with dedup key {key!r}")
        return self.answer({
            "key": key, "ticket": stored.get("ticket"), "revisions": stored.get("revisions", []),
            "previous": stored.get("previous", []), "worker": cluster.me,
        })


@app.page(API + "/incidents/{key}/actions")
class IncidentActions(OpsView):
    async def post(self, request: web.Request, key: str) -> web.Response:
        if denied := self.unactionable(request):  # checked before forwarding: no token, no traffic
            return denied
        if routed := await self.to_owner(request, key):
            return routed
        try:
            body = await self.json_body(request)
            action = OperatorAction.from_dict({**body, "type": "action", "dedup_key": key, "at": time.time()})
        except (BadRequest, InvalidEvent) as exc:
            return self.problem(400, str(exc))
        stored = incidents_table.get(key.encode())
        if not stored:
            return self.problem(404, f"no incident with dedup key {key!r}")
        ticket = stored["ticket"]
        if ticket.get("status") == "resolved" and action.action in (ActionKind.ACKNOWLEDGE, ActionKind.RESOLVE):
            return self.problem(409, f"incident {ticket.get('incident_id')} is already resolved")
        await submit_action(action)
        metrics.actions[action.action.value] += 1
        log.info("operator action %s on %s by %s", action.action.value, key, action.by)
        return self.answer({"accepted": action.to_dict(), "incident_id": ticket.get("incident_id"),
                            "worker": cluster.me}, status=202)


# --- silences (a global table: every worker has them all) ------------------------------------------


def _silences(now: float) -> list[dict[str, Any]]:
    views = [silence_view(s, now) for s in list(silences_table.values()) if isinstance(s, dict)]
    return sorted(views, key=lambda s: (not s["active"], -(s.get("starts_at") or 0)))


@app.page(API + "/silences")
class Silences(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        return self.answer({"silences": _silences(time.time())})

    async def post(self, request: web.Request) -> web.Response:
        if denied := self.unactionable(request):
            return denied
        now = time.time()
        try:
            body = await self.json_body(request)
            starts = body.get("starts_at", now)
            expires = body.get("expires_at")
            if expires is None and body.get("duration_s") is not None:
                duration = body["duration_s"]
                if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
                    raise BadRequest("'duration_s' must be a positive number")
                expires = (starts if isinstance(starts, (int, float)) else now) + duration
            silence = Silence.from_dict({
                "id": f"s-{uuid.uuid4().hex[:12]}", "matchers": body.get("matchers"),
                "created_by": body.get("created_by") or body.get("by"), "starts_at": starts,
                "expires_at": expires, "until_resolved": bool(body.get("until_resolved", False)),
                "comment": body.get("comment", ""),
            })
            if silence.expires_at is not None and silence.expires_at <= silence.starts_at:
                raise BadRequest("the silence would expire before it starts")
            await submit_silence(silence)
        except (BadRequest, InvalidEvent, ValueError) as exc:
            return self.problem(400, str(exc))
        metrics.actions["silence"] += 1
        log.info("silence %s by %s: %s", silence.id, silence.created_by, silence.matchers)
        return self.answer({"accepted": silence_view(silence.to_dict(), now)}, status=202)


@app.page(API + "/silences/{silence_id}")
class OneSilence(OpsView):
    async def get(self, request: web.Request, silence_id: str) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        stored = silences_table.get(silence_id)
        if not stored:
            return self.problem(404, f"no silence {silence_id!r}")
        return self.answer(silence_view(stored, time.time()))

    async def delete(self, request: web.Request, silence_id: str) -> web.Response:
        if denied := self.unactionable(request):
            return denied
        if not silences_table.get(silence_id):
            return self.problem(404, f"no silence {silence_id!r}")
        await expire_silence(silence_id)
        metrics.actions["expire_silence"] += 1
        log.info("silence %s expired by request", silence_id)
        return self.answer({"expired": silence_id}, status=202)


# --- models, services, workers ----------------------------------------------------------------------


@app.page(API + "/models")
class Models(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        try:
            want_series, points = _flag(request.query, "series", True), _points(request.query)
        except BadRequest as exc:
            return self.problem(400, str(exc))
        wanted = request.query.get("model")
        found = []
        for key, (model, version, segment), monitor in model_monitors():
            if wanted and model != wanted or not cluster.owns_input(settings.topics.predictions, model):
                continue
            entry: dict[str, Any] = {"key": key, "model": model, "version": version, "segment": segment,
                                     "state": _state(monitor), "worker": cluster.me}
            if want_series:
                entry["series"] = series.export(key, points)
            found.append(entry)
        answers = await self.gather(request, API + "/models", {"models": found})
        models = [m for a in answers if a["ok"] for m in a["models"]]
        models.sort(key=lambda m: (m["model"], m["version"], m["segment"] or ""))
        return self.answer({"models": models, "generated_at": time.time(),
                            "partial": not all(a["ok"] for a in answers), "workers": self.workers_of(answers)})


@app.page(API + "/services")
class Services(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        try:
            want_series, points = _flag(request.query, "series", True), _points(request.query)
        except BadRequest as exc:
            return self.problem(400, str(exc))
        wanted = request.query.get("source")
        found = []
        for key, (source, kind), monitor in service_monitors():
            if wanted and source != wanted or not cluster.owns_input(settings.topics.infrastructure, source):
                continue
            entry: dict[str, Any] = {"key": key, "source": source, "source_kind": kind, "state": _state(monitor),
                                     "worker": cluster.me}
            if want_series:
                entry["series"] = series.export(key, points)
            found.append(entry)
        answers = await self.gather(request, API + "/services", {"services": found})
        services = sorted((s for a in answers if a["ok"] for s in a["services"]), key=lambda s: s["source"])
        return self.answer({"services": services, "generated_at": time.time(),
                            "partial": not all(a["ok"] for a in answers), "workers": self.workers_of(answers)})


def _worker_summary() -> dict[str, Any]:
    ready, reasons = readiness()
    partitions: dict[str, list[int]] = {}
    for topic in INPUT_TOPICS:
        partitions[topic] = sorted(cluster.active(topic))
    return {
        "url": cluster.me, "app_id": settings.app_id, "ready": ready, "not_ready": reasons,
        "started_at": started_at, "partitions": partitions, "counters": metrics.snapshot(),
        "monitored": {name: len(registry) for name, registry in fleets().items()},
        "open_incidents": sum(1 for s in owned_incidents()
                              if isinstance(s.get("ticket"), dict) and s["ticket"].get("status") != "resolved"),
    }


@app.page(API + "/workers")
class Workers(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        if denied := self.unreadable(request):
            return denied
        answers = await self.gather(request, API + "/workers", {"workers": [_worker_summary()]})
        workers = [w for a in answers for w in (a["workers"] if a["ok"] else [{"url": a["worker"], "error": a["error"]}])]
        return self.answer({"workers": workers, "self": cluster.me,
                            "partial": not all(a["ok"] for a in answers)})


@app.page(API + "/openapi.json")
class OpenAPI(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        document = resources.files("agents.web").joinpath("openapi.json").read_bytes()
        return self.bytes(document, content_type="application/json", headers={WORKER_HEADER: cluster.me})


# --- metrics, health, readiness -------------------------------------------------------------------------


@app.page("/metrics")
class MetricsPage(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        return self.bytes(generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/health")
class Health(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        """Alive: the event loop answers and the app has not crashed (a liveness probe). A broker outage
        makes it ``degraded`` but still 200: restarting the worker would not bring the brokers back, and it
        reconnects by itself (``/ready`` is 503 meanwhile)."""
        if app.crashed:
            return self.answer({"status": "crashed", "broker": broker.view()}, status=503)
        return self.answer({"status": "degraded" if broker.reachable is False else "ok",
                            "uptime_s": round(time.time() - started_at, 3), "broker": broker.view()})


@app.page("/ready")
class Ready(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        """Ready: tables recovered and no rebalance in progress (a readiness probe)."""
        ready, reasons = readiness()
        return self.answer({"ready": ready, "not_ready": reasons}, status=200 if ready else 503)


# --- the dashboard --------------------------------------------------------------------------------------


@app.page("/dashboard")
class DashboardRedirect(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        return self.bytes(b"", status=302, headers={"Location": "/dashboard/"})


def _static(name: str) -> bytes:
    return (resources.files("agents.web") / "static" / name).read_bytes()


@app.page("/dashboard/")
class Dashboard(OpsView):
    async def get(self, request: web.Request) -> web.Response:
        return self.bytes(_static("index.html"), content_type="text/html", headers={"Cache-Control": "no-cache"})


@app.page("/dashboard/static/{name}")
class Static(OpsView):
    async def get(self, request: web.Request, name: str) -> web.Response:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return self.problem(404, f"no file {name!r}")
        return self.bytes(_static(name), content_type=content_type, headers={"Cache-Control": "no-cache"})
