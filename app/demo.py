"""``emlops demo``: the whole product in one command, on the embedded local broker by default.

Starts the broker if none is configured, a real worker process (the same one ``faust -A app.worker worker``
runs), produces demo traffic with injected incidents, prints each ticket revision as it appears on the
incidents topic and ends with a summary. Each run uses its own topic prefix and app id, so old runs on
the same broker never leak into a new one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.broker import BrokerError, default_broker, free_port
from app.settings import Settings
from app.topics import ensure_topics
from app.traffic import INCIDENTS, PREDICTIONS, Injected, Traffic
from app.worker_process import WorkerProcess
from models import codec

DEMO_ENV = {
    "EMLOPS_RESOLVE_AFTER_S": "8",
    "EMLOPS_GROUP_INTERVAL_S": "5",
    "EMLOPS_TICK_INTERVAL_S": "1",
}


@dataclass
class Tally:
    produced: Counter[str] = field(default_factory=Counter)
    detections: int = 0
    revisions: Counter[str] = field(default_factory=Counter)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest revision by incident id

    def matched(self, injected: Injected) -> dict[str, Any] | None:
        for ticket in self.incidents.values():
            labels = ticket["labels"]
            if injected.kind in ticket["kinds"] and injected.entity in (labels.get("model"), labels.get("source")):
                return ticket
        return None

    def areas(self) -> Counter[str]:
        return Counter(area for t in self.incidents.values() for area in t["areas"])


def format_ticket(t: dict[str, Any]) -> str:
    areas = ", ".join(a + ("*" if a == t["primary_area"] else "") for a in t["areas"])
    return (f"  {t['status'].upper():<12} {t['priority']} r{t['revision']:<2} #{t['incident_id'][:8]} "
            f"[{areas}] {t['summary'][:110]}  ({t['update_reason']})")


async def _watch(settings: Settings, tally: Tally, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        settings.topics.incidents, settings.topics.detections,
        auto_offset_reset="earliest", enable_auto_commit=False, **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                for message in messages:
                    value = codec.loads(message.value)
                    if tp.topic == settings.topics.detections:
                        tally.detections += value.get("type") == "detection"
                        continue
                    tally.revisions[value["status"]] += 1
                    tally.incidents[value["incident_id"]] = value
                    print(format_ticket(value), flush=True)
    finally:
        await consumer.stop()


async def _produce(settings: Settings, traffic: Traffic, tally: Tally, rate: float) -> None:
    producer = AIOKafkaProducer(linger_ms=5, **settings.kafka_client_options())
    await producer.start()
    topic_of = {PREDICTIONS: settings.topics.predictions}
    started = time.monotonic()
    try:
        sent = 0
        for kind, key, event in traffic:
            topic = topic_of.get(kind, settings.topics.infrastructure)
            await producer.send(topic, codec.dumps(event), key=key.encode())
            tally.produced[kind] += 1
            sent += 1
            if sent % 500 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()


async def _progress(tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(3)
        print(f"… produced {sum(tally.produced.values()):,} events · {tally.detections} detections · "
              f"{len(tally.incidents)} incidents", flush=True)


async def _session(settings: Settings, worker: WorkerProcess, steps: int, rate: float,
                   timeout: float) -> Tally:
    await ensure_topics(settings)
    tally, stop = Tally(), asyncio.Event()
    watcher = asyncio.create_task(_watch(settings, tally, stop))
    progress = asyncio.create_task(_progress(tally, stop))
    try:
        await _produce(settings, Traffic(steps=steps), tally, rate)
        print(f"… all {sum(tally.produced.values()):,} events produced; waiting for tickets to open and resolve",
              flush=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and worker.exit_code is None:
            tickets = [tally.matched(i) for i in INCIDENTS]
            if all(t is not None and t["status"] == "resolved" for t in tickets):
                break
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(watcher, progress)
    return tally


def _summary(tally: Tally) -> bool:
    print("\nSummary")
    print(f"  events produced: {sum(tally.produced.values()):,} "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(tally.produced.items()))})")
    print(f"  detections: {tally.detections}")
    print(f"  incidents: {len(tally.incidents)}; revisions: "
          + ", ".join(f"{k} {v}" for k, v in sorted(tally.revisions.items())))
    areas = tally.areas()
    print("  incidents by experience area: "
          + ", ".join(f"{a} {areas.get(a, 0)}" for a in ("Business", "Technical Operations", "Data Operations", "User")))
    ok = True
    for injected in INCIDENTS:
        ticket = tally.matched(injected)
        found = "MISSED" if ticket is None else f"{ticket['priority']} {ticket['status']} [{', '.join(ticket['areas'])}]"
        ok &= ticket is not None and set(injected.areas) <= set(ticket["areas"])
        print(f"  injected {injected.name:<17} on {injected.entity:<18} -> {found}")
    ok &= all(areas.get(a, 0) > 0 for a in ("Business", "Technical Operations", "Data Operations", "User"))
    print("demo " + ("passed: every injected incident became a ticket" if ok else "FAILED: see above"))
    return ok


def run(steps: int = 3000, rate: float = 2000.0, timeout: float = 60.0) -> int:
    try:
        return _run(steps, rate, timeout)
    except BrokerError as exc:
        print(f"emlops demo: the local broker did not start: {exc}", file=sys.stderr)
        return 1


def _run(steps: int, rate: float, timeout: float) -> int:
    # New topics take a moment to reach every client's metadata; aiokafka warns about that meanwhile.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    base = Settings.from_env()
    run_id = time.strftime("%Y%m%d%H%M%S")
    with ExitStack() as stack:
        if base.uses_local_broker:
            broker = default_broker()
            was_running = broker.status()["running"]
            print(f"… starting the local Apache Kafka broker ({broker.bootstrap})" if not was_running
                  else f"… using the running local broker ({broker.bootstrap})", flush=True)
            bootstrap = broker.start()
            if not was_running:
                stack.callback(broker.stop)
        else:
            bootstrap = base.bootstrap
            print(f"… using the configured cluster {bootstrap}", flush=True)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emlops-demo-")))
        env = {
            **os.environ, **DEMO_ENV,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EMLOPS_APP_ID": f"emlops-demo-{run_id}",
            "EMLOPS_TOPIC_PREFIX": f"emlops-demo-{run_id}.",
            "EMLOPS_WEB_PORT": str(free_port()),
            "EMLOPS_DATA_DIR": str(work / "data"),
        }
        settings = Settings.from_env(env)
        print(f"… starting a worker (faust -A app.worker worker), web views on http://127.0.0.1:{env['EMLOPS_WEB_PORT']}",
              flush=True)
        worker = stack.enter_context(WorkerProcess(env, work / "worker.log"))
        tally = asyncio.run(_session(settings, worker, steps, rate, timeout))
        if worker.exit_code is not None:
            print(f"worker exited early with code {worker.exit_code}; its log:\n{worker.log_tail()}", file=sys.stderr)
            return 1
        return 0 if _summary(tally) else 1
