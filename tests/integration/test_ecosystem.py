"""The ecosystem on the real broker, through a real worker started with a configuration file:

* raw KServe (Open Inference Protocol v2, CloudEvents binary mode) and Seldon (its direct Kafka logger)
  payload logs, and Telegraf and OTLP/JSON metric batches, each produced to its own topic, yield the same
  tickets (status, kinds, areas, priority, entity labels) as the equivalent native events;
* a local HTTP receiver gets the Alertmanager webhook and PagerDuty deliveries for an incident that is
  triggered and then resolved, although it was down when the incident opened; a sink whose receiver refuses
  the delivery gives it up into the dead-letter topic with the sink's name.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from app.broker import free_port
from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from models import codec
from tests.brokers import worker_env
from tests.integration.kafka_io import read_until, tickets

KSERVE_REQUEST, KSERVE_RESPONSE = "org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"
SELDON_REQUEST, SELDON_RESPONSE = "io.seldon.serving.inference.request", "io.seldon.serving.inference.response"
Message = tuple[str, bytes, list[tuple[str, bytes]]]


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread of its own: records what it accepts; '/gone' always answers 404."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path.strip("/")
        if path == "gone":
            return web.json_response({"error": "no such receiver"}, status=404)
        body = await request.json()
        with self._lock:
            self.received.setdefault(path, []).append(body)
        return web.json_response({"status": "success"}, status=202)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received.get(path, []))


SINK_MODEL = "it-sink-model"


@pytest.fixture(scope="module")
def ecosystem(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Receiver]]:
    """A worker whose configuration file adds four input topics in foreign formats and three sinks."""
    run = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("ecosystem")
    receiver = Receiver(free_port())
    hook = f"http://127.0.0.1:{receiver.port}"
    config = work / "emlops.toml"
    config.write_text(f"""
[emlops]
resolve_after_s = 8

[[inputs]]
topic = "it-eco-{run}.kserve"
format = "kserve"

[[inputs]]
topic = "it-eco-{run}.seldon"
format = "seldon"

[[inputs]]
topic = "it-eco-{run}.telegraf"
format = "telegraf"

[[inputs]]
topic = "it-eco-{run}.otlp"
format = "otlp"

[models.{SINK_MODEL}]
owner = "it-team"

[[sinks]]
name = "hook"
type = "alertmanager"
url = "{hook}/alertmanager"
route = {{ labels = {{ model = "{SINK_MODEL}" }} }}
backoff = {{ initial_s = 0.2, max_s = 1.0, give_up_after_s = 300 }}

[[sinks]]
name = "pager"
type = "pagerduty"
url = "{hook}/pagerduty"
routing_key = "it-routing-key"
route = {{ labels = {{ model = "{SINK_MODEL}" }} }}
backoff = {{ initial_s = 0.2, max_s = 1.0, give_up_after_s = 300 }}

[[sinks]]
name = "broken"
type = "alertmanager"
url = "{hook}/gone"
route = {{ labels = {{ model = "{SINK_MODEL}" }}, statuses = ["triggered"] }}
""")
    env = worker_env(bootstrap, "eco", work / "data", EMLOPS_CONFIG=str(config), EMLOPS_TICK_INTERVAL_S="1")
    settings = Settings.from_env(env)
    asyncio.run(ensure_topics(settings))
    try:
        with WorkerProcess(env, work / "worker.log") as worker:
            yield settings, receiver
            if worker.exit_code is not None:
                pytest.fail(f"the worker died (exit {worker.exit_code}):\n{worker.log_tail()}", pytrace=False)
    finally:
        receiver.close()


def topic(settings: Settings, format: str) -> str:
    return next(spec.topic for spec in settings.inputs if spec.format == format)


async def produce(settings: Settings, messages: list[tuple[str, Message]]) -> None:
    """(topic, (key, value, headers)) in order."""
    producer = AIOKafkaProducer(linger_ms=5, **settings.kafka_client_options())
    await producer.start()
    try:
        for name, (key, value, headers) in messages:
            await producer.send(name, value, key=key.encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def native(settings: Settings, key: str, event: dict[str, Any], infra: bool = False) -> tuple[str, Message]:
    name = settings.topics.infrastructure if infra else settings.topics.predictions
    return name, (key, codec.dumps(event), [])


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- scenarios: raw payloads and their native twins ---------------------------------------------------------------


def kserve_scenario(settings: Settings, model: str, twin: str, rng: random.Random) -> list[tuple[str, Message]]:
    """OIP v2 request/response pairs in CloudEvents binary mode; feature x drifts after 1000 requests."""
    out: list[tuple[str, Message]] = []
    base = time.time() - 3600
    for i in range(1600):
        x, y = round(rng.gauss(0, 1) + (3 if i >= 1000 else 0), 4), round(rng.gauss(5, 1), 4)
        asked, answered = rfc3339(base + i * 0.02), rfc3339(base + i * 0.02 + 0.015)
        request = {"id": f"{model}-{i}", "inputs": [
            {"name": "x", "shape": [1], "datatype": "FP64", "data": [x]},
            {"name": "y", "shape": [1, 1], "datatype": "FP64", "data": [[y]]}]}
        response = {"model_name": model, "model_version": "4", "id": f"{model}-{i}", "outputs": [
            {"name": "predict", "shape": [1, 1], "datatype": "INT64", "data": [1]},
            {"name": "proba", "shape": [1, 2], "datatype": "FP32", "data": [0.2, 0.8]}]}
        for kind, body, when in ((KSERVE_REQUEST, request, asked), (KSERVE_RESPONSE, response, answered)):
            headers = [(k, v.encode()) for k, v in (
                ("ce_specversion", "1.0"), ("ce_id", f"{model}-{i}"), ("ce_type", kind),
                ("ce_source", f"http://{model}-predictor.models/"), ("ce_time", when),
                ("ce_inferenceservicename", model), ("ce_namespace", "models"), ("ce_component", "predictor"),
                ("ce_endpoint", "default"), ("content-type", "application/json"))]
            out.append((topic(settings, "kserve"), (model, codec.dumps(body), headers)))
        out.append(native(settings, twin, {
            "type": "prediction", "request_id": f"{twin}-{i}", "model": twin, "version": "4",
            "timestamp": epoch(asked), "features": {"x": x, "y": y}, "prediction": 1, "confidence": 0.8,
            "scores": {"0": 0.2, "1": 0.8}, "latency_ms": round((epoch(answered) - epoch(asked)) * 1000, 3)}))
    return out


def seldon_scenario(settings: Settings, model: str, twin: str, rng: random.Random) -> list[tuple[str, Message]]:
    """Seldon protocol bodies from Seldon Core's direct Kafka logger; the class scores drift after 1000."""
    out: list[tuple[str, Message]] = []
    for i in range(1600):
        a, b = round(rng.gauss(10, 2), 4), round(rng.gauss(-1, 0.5) + (2.5 if i >= 1000 else 0), 4)
        request = {"data": {"names": ["a", "b"], "ndarray": [[a, b]]}}
        response = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.1, 0.9]]}, "meta": {}}
        for kind, body in ((SELDON_REQUEST, request), (SELDON_RESPONSE, response)):
            headers = [(k, v.encode()) for k, v in (
                ("type", kind), ("content-type", "application/json"), ("modelid", "classifier"),
                ("requestid", f"puid-{i}"), ("inferenceservicename", model), ("namespace", "seldon"),
                ("endpoint", "default"), ("protocol", "seldon"))]
            out.append((topic(settings, "seldon"), (model, codec.dumps(body), headers)))
        out.append(native(settings, twin, {
            "type": "prediction", "request_id": f"puid-{i}", "model": twin, "version": "default",
            "timestamp": time.time(), "features": {"a": a, "b": b}, "prediction": "t:1", "confidence": 0.9,
            "scores": {"t:0": 0.1, "t:1": 0.9}}))
    return out


METRICS = (("cpu", 40.0, 4.0), ("memory", 60.0, 2.0), ("errors", 0.01, 0.002))


def readings(rng: random.Random, rounds: int = 600, spike_from: int = 500) -> list[dict[str, float]]:
    return [{name: (rng.gauss(97.0, 1.0) if name == "cpu" and r >= spike_from else rng.gauss(mean, std))
             for name, mean, std in METRICS} for r in range(rounds)]


def telegraf_scenario(settings: Settings, source: str, twin: str, rng: random.Random) -> list[tuple[str, Message]]:
    """Telegraf JSON batches of 10 metrics, one metric per round with three fields; cpu spikes at round 500."""
    out: list[tuple[str, Message]] = []
    base = int(time.time()) - 3600
    rounds = readings(rng)
    for start in range(0, len(rounds), 10):
        batch = {"metrics": [{"name": "svc", "tags": {"service": source, "host": "it-node"},
                              "fields": rounds[r], "timestamp": base + r} for r in range(start, start + 10)]}
        out.append((topic(settings, "telegraf"), (source, codec.dumps(batch), [])))
        for r in range(start, start + 10):
            for name, value in rounds[r].items():
                out.append(native(settings, twin, {"type": "infra", "source": twin, "metric": f"svc_{name}",
                                                   "value": value, "timestamp": base + r}, infra=True))
    return out


def otlp_scenario(settings: Settings, source: str, twin: str, rng: random.Random) -> list[tuple[str, Message]]:
    """OTLP/JSON exports of 20 rounds each (one resourceMetrics per round, three gauges); cpu spikes at 500."""
    out: list[tuple[str, Message]] = []
    base = int(time.time()) - 3600
    rounds = readings(rng)
    for start in range(0, len(rounds), 20):
        export = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": source}}]},
            "scopeMetrics": [{"scope": {"name": "it"}, "metrics": [
                {"name": f"svc.{name}", "unit": "1", "gauge": {"dataPoints": [
                    {"asDouble": rounds[r][name], "timeUnixNano": str((base + r) * 10**9)}]}}
                for name, _, _ in METRICS]}]} for r in range(start, start + 20)]}
        out.append((topic(settings, "otlp"), (source, codec.dumps(export), [])))
        for r in range(start, start + 20):
            for name, value in rounds[r].items():
                out.append(native(settings, twin, {"type": "infra", "source": twin, "metric": f"svc.{name}",
                                                   "value": value, "unit": "1", "timestamp": base + r}, infra=True))
    return out


def first_ticket(records: list, entity: str) -> dict[str, Any] | None:
    return next((t for t in tickets(records) if entity in (t["labels"].get("model"), t["labels"].get("source"))),
                None)


def comparable(ticket: dict[str, Any], entity: str) -> dict[str, Any]:
    labels = {k: ("<entity>" if v == entity else v) for k, v in ticket["labels"].items()}
    return {"status": ticket["status"], "revision": ticket["revision"], "kinds": ticket["kinds"],
            "areas": ticket["areas"], "primary_area": ticket["primary_area"], "priority": ticket["priority"],
            "severity": ticket["severity"], "labels": labels}


SCENARIOS: dict[str, Callable[[Settings, str, str, random.Random], list[tuple[str, Message]]]] = {
    "kserve": kserve_scenario, "seldon": seldon_scenario, "telegraf": telegraf_scenario, "otlp": otlp_scenario,
}


def test_foreign_formats_yield_the_same_tickets_as_native_events(ecosystem: tuple[Settings, Receiver]) -> None:
    settings, _ = ecosystem
    pairs = {fmt: (f"it-{fmt}-raw", f"it-{fmt}-twin") for fmt in SCENARIOS}
    messages = [m for i, (fmt, make) in enumerate(SCENARIOS.items())
                for m in make(settings, *pairs[fmt], random.Random(100 + i))]
    entities = [name for pair in pairs.values() for name in pair]

    async def scenario() -> list:
        await produce(settings, messages)
        return await read_until(settings, settings.topics.incidents,
                                lambda rs: all(first_ticket(rs, e) is not None for e in entities), timeout=150)

    records = asyncio.run(scenario())
    for fmt, (raw, twin) in pairs.items():
        adapted, reference = first_ticket(records, raw), first_ticket(records, twin)
        assert adapted is not None and reference is not None
        assert comparable(adapted, raw) == comparable(reference, twin), fmt
    kserve = first_ticket(records, "it-kserve-raw")
    assert kserve is not None and kserve["labels"]["version"] == "4"  # the v2 response's model_version
    assert kserve["labels"].get("feature") == "x"  # named after its input tensor
    telegraf = first_ticket(records, "it-telegraf-raw")
    assert telegraf is not None and telegraf["kinds"] == ["infra_anomaly"] and telegraf["labels"]["metric"] == "svc_cpu"
    otlp = first_ticket(records, "it-otlp-raw")
    assert otlp is not None and otlp["labels"]["metric"] == "svc.cpu"


def test_a_garbled_payload_log_is_dead_lettered_with_the_adapters_reason(ecosystem: tuple[Settings, Receiver]) -> None:
    settings, _ = ecosystem
    bad = [
        (topic(settings, "kserve"), ("it-bad-kserve", b'{"instances": [[1, 2]]}', [])),
        (topic(settings, "telegraf"), ("it-bad-telegraf", b'{"name": "cpu", "fields": {"v": 1}, "timestamp": 1}', [])),
        (topic(settings, "otlp"), ("it-bad-otlp", b'{"resourceMetrics": "none"}', [])),
    ]

    async def scenario() -> dict[bytes, dict[str, bytes]]:
        await produce(settings, bad)
        ours = {b"it-bad-kserve", b"it-bad-telegraf", b"it-bad-otlp"}
        records = await read_until(settings, settings.topics.dead_letter,
                                   lambda rs: ours <= {r.key for r in rs}, timeout=60)
        return {r.key: dict(r.headers) for r in records if r.key in ours}

    dead = asyncio.run(scenario())
    assert b"not a CloudEvent" in dead[b"it-bad-kserve"]["emlops.reason"]
    assert b"none of the source tags" in dead[b"it-bad-telegraf"]["emlops.reason"]
    assert b"'resourceMetrics' list" in dead[b"it-bad-otlp"]["emlops.reason"]
    assert dead[b"it-bad-otlp"]["emlops.origin.topic"] == topic(settings, "otlp").encode()


def test_sinks_deliver_trigger_and_resolve_to_a_receiver_that_was_down(ecosystem: tuple[Settings, Receiver]) -> None:
    settings, receiver = ecosystem
    rng = random.Random(7)
    events = [(SINK_MODEL, {
        "type": "prediction", "request_id": f"sink-{i}", "model": SINK_MODEL, "version": "1", "timestamp": time.time(),
        "features": {"x": round(rng.gauss(0, 1) + (3 if i >= 1000 else 0), 4)}, "prediction": 1,
    }) for i in range(1600)]

    async def opened() -> dict[str, Any]:
        await produce(settings, [native(settings, key, event) for key, event in events])
        records = await read_until(settings, settings.topics.incidents,
                                   lambda rs: first_ticket(rs, SINK_MODEL) is not None)
        ticket = first_ticket(records, SINK_MODEL)
        assert ticket is not None
        return ticket

    ticket = asyncio.run(opened())
    time.sleep(3)  # the receiver is still down: every delivery so far was refused and is being retried
    assert receiver.bodies("alertmanager") == [] and receiver.bodies("pagerduty") == []
    receiver.start()

    def ours(bodies: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return [b for b in bodies if b.get(key) == ticket["dedup_key"]
                or b.get("groupLabels", {}).get("dedup_key") == ticket["dedup_key"]]

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        alerts = ours(receiver.bodies("alertmanager"), "dedup_key")
        pages = ours(receiver.bodies("pagerduty"), "dedup_key")
        if any(a["status"] == "resolved" for a in alerts) and any(p["event_action"] == "resolve" for p in pages):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no resolution delivered: {receiver.received}")

    assert alerts[0]["status"] == "firing" and alerts[-1]["status"] == "resolved"
    assert [a["status"] for a in alerts].count("resolved") == 1
    first, last = alerts[0]["alerts"][0], alerts[-1]["alerts"][0]
    assert first["fingerprint"] == last["fingerprint"] == ticket["incident_id"]
    assert first["labels"]["model"] == SINK_MODEL and first["labels"]["owner"] == "it-team"
    assert first["endsAt"] == "0001-01-01T00:00:00Z" and last["endsAt"] != first["endsAt"]
    assert pages[0]["event_action"] == "trigger" and pages[-1]["event_action"] == "resolve"
    assert pages[0]["routing_key"] == "it-routing-key" and pages[0]["payload"]["source"] == f"model {SINK_MODEL} v1"
    assert all(p["event_action"] == "trigger" for p in pages[:-1])

    async def given_up() -> list:
        return [r for r in await read_until(
            settings, settings.topics.dead_letter,
            lambda rs: any(dict(r.headers).get("emlops.sink") == b"broken" for r in rs), timeout=30)
            if dict(r.headers).get("emlops.sink") == b"broken"]

    [dead] = asyncio.run(given_up())
    headers = dict(dead.headers)
    assert headers["emlops.reason"].startswith(b"sink broken: not retryable: HTTP 404")
    assert headers["emlops.origin.topic"] == settings.topics.incidents.encode()
    assert codec.loads(dead.value)["dedup_key"] == ticket["dedup_key"]
    assert b"it-routing-key" not in dead.value

    samples = scrape(settings)
    assert samples[("emlops_sink_deliveries_total", (("outcome", "retried"), ("sink", "hook")))] >= 1
    assert samples[("emlops_sink_deliveries_total", (("outcome", "delivered"), ("sink", "pager")))] >= 2
    assert samples[("emlops_sink_deliveries_total", (("outcome", "failed"), ("sink", "broken")))] >= 1


def scrape(settings: Settings) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The worker's /metrics, parsed with prometheus_client's own text-format parser."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    from urllib.error import URLError

    deadline = time.monotonic() + 60
    while True:  # the worker's web server comes up a few seconds after the process starts
        try:
            with urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10) as response:
                text = response.read().decode()
            break
        except (URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_adapter_state_is_exposed_on_the_metrics_page(ecosystem: tuple[Settings, Receiver]) -> None:
    settings, _ = ecosystem
    kserve = topic(settings, "kserve")

    def state(counter: str, format: str = "kserve", name: str = kserve) -> float:
        return scrape(settings).get(("emlops_adapter_state", (("counter", counter), ("format", format),
                                                               ("topic", name))), 0.0)

    before = state("paired")
    pairs = kserve_scenario(settings, "it-kserve-metrics", "it-kserve-metrics-twin", random.Random(3))[:3 * 5]
    asyncio.run(produce(settings, [m for m in pairs if m[0] == kserve]))
    deadline = time.monotonic() + 60
    while state("paired") < before + 5:
        assert time.monotonic() < deadline, f"paired stayed at {state('paired')}"
        time.sleep(0.5)
    assert state("waiting") == 0  # every request met its response
    assert ("emlops_adapter_state", (("counter", "skipped"), ("format", "otlp"), ("topic", topic(settings, "otlp")))) \
        in scrape(settings)
