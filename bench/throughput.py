"""Throughput, CPU, memory and latency of the emlops worker against a Faust and an aiokafka baseline.

    python bench/throughput.py                 # the full run, 600,000 events (~4-8 minutes on 2 cores)
    python bench/throughput.py --quick         # a smoke run, 60,000 events (2 to 4 minutes)

A benchmark that prints a table, not a test. On one broker (a throw-away local one on free ports, or
KAFKA_BOOTSTRAP_SERVERS) it pre-produces N events of a realistic fleet (bench/workload.py) and then, on the
same topics, each with its own consumer group:

1. raw aiokafka: a plain consumer reads the input topics to their end offsets, a few passes (the ceiling
   for a Python consumer), and once more decoding every value with orjson;
2. naive Faust: a passthrough agent, one event in and one event out (bench/passthrough.py);
3. emlops: the real worker (``faust -A app.worker worker`` via app.worker_process) with every default
   monitor, sampled by py-spy (non-blocking, 100 Hz) over the same window;
4. two emlops workers in one group, sharing the partitions;
5. latency: a fresh worker on fresh topics fed at half the rate measured in 3, with incidents injected
   over time; event produce time -> Kafka timestamp of the ticket revision on the incidents topic. The
   events are made beforehand, and the producer runs at a lower priority than the worker (it stands for
   services on other machines); the table says which process had how much of the 2 cores meanwhile;
6. the CPU cost of each hot-path step in-process (bench/components.py): decode, monitors, counters;
7. memory of the monitors (bench/memory.py, in-process on models.fleet).

Rates of the Faust passthrough come from its consumer group's committed offsets (polled with the admin
client), those of emlops workers from the events their /metrics say they consumed (they commit only at
checkpoints): between the first progress seen and the last before the backlog was nearly gone, the worker
was busy the whole time, so the slope is its sustained rate and its CPU over the same window is the CPU
per event. A fresh worker's state grows up to its bounds (its label joins are full, 50,000 predictions for
each of the 8 models, after some 500,000 events, and every checkpoint saves them whole), so the full run
pre-produces 600,000 events and the table gives each window's rate over its second half too (4 to 5% below
the whole window's in two runs). With 200,000, two workers had the backlog for 3 s after their group settled.
Runs should span the whole backlog: Faust reads its topics round-robin, so the small infrastructure topic
drains first and a capped window sees another mix (the table shows each window's infrastructure share).
The last line is the one-line summary tracked from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/throughput.py` puts bench/ first on the path, not the repo
    sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.errors import KafkaError, TopicAlreadyExistsError  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from app.broker import LocalBroker, free_port  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.topics import ensure_topics  # noqa: E402
from app.worker_process import WorkerProcess  # noqa: E402
from bench import profiling  # noqa: E402
from bench.procstat import cpu_seconds, loadavg, peak_rss_mib  # noqa: E402
from bench.workload import INFRASTRUCTURE, Incident, Workload, fleet, standard_incidents  # noqa: E402
from models import codec, signals  # noqa: E402

# The timestamp the latency phase's events are made with; replaced by the time each is sent. No event has it.
PRODUCE_TIME = 1e-300
# Revisions published at once because of a detection (routing.route); "N more occurrence(s)", "quiet for"
# and operator actions come from timers or people, so their latency says nothing about the hot path.
DETECTION_REASONS = re.compile(r"^(opened|escalated to|new signal|new areas|explained by|new entity)")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- runs ------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured consumer: events/s over its busy window, CPU per event, peak RSS of each process."""

    name: str
    events: int = 0  # events consumed inside the window
    seconds: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: list[float] = field(default_factory=list)
    processes: int = 1
    complete: bool = True  # False: stopped at the time cap before the backlog was gone
    note: str = ""
    # Faust reads its topics round-robin, so the small infrastructure topic drains first: a window that does
    # not span the whole backlog sees another mix than the workload's. Reported next to every run.
    infra_share: float | None = None
    # Over the window's second half: a fresh worker's state grows (label joins fill, checkpoints get larger)
    # until every key is at its bounds, so a rate that holds up to the end is the sustained one.
    late_rate: float | None = None
    # Cores the broker and the benchmark itself used over the window: what the machine left the readers.
    others_cores: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def rate_per_process(self) -> float:
        return self.rate / self.processes

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else 0.0

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def cores(self) -> float:
        """CPU seconds per wall second: below 1 per process means it waited (for the broker, or for a CPU)."""
        return self.cpu_s / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Sample:
    t: float
    committed: int
    infra: int  # of which on the infrastructure topic
    cpu: float
    stable: bool
    others: dict[str, float] = field(default_factory=dict)  # CPU seconds of the broker and of the benchmark


class GroupWatch:
    """Polls the committed offsets on the input partitions of every consumer group whose id starts with
    ``group`` (the app id: Faust's group, and any group an intake of its own may use), the group's state, and
    the CPU of its processes."""

    def __init__(self, admin: AIOKafkaAdminClient, group: str, ends: dict[TopicPartition, int],
                 members_of: str | None = None, ports: list[int] | None = None,
                 others: dict[str, int | None] | None = None) -> None:
        self.admin, self.group, self.ends = admin, group, ends
        self.others = {name: pid for name, pid in (others or {}).items() if pid}  # processes watched alongside
        self.members_of = members_of or group  # the group that reads the inputs (an emlops worker's intake)
        # emlops workers commit only at checkpoints (every 5 s), too seldom to time a backlog they clear in a
        # few seconds: their progress is the events their /metrics say they consumed.
        self.ports = ports or []
        self.total = sum(ends.values())
        self._groups: list[str] = [group]
        self._listed = 0.0

    async def _group_ids(self) -> list[str]:
        if time.monotonic() - self._listed > 2:
            self._listed = time.monotonic()
            with contextlib.suppress(KafkaError):
                found = [g for g, _ in await self.admin.list_consumer_groups() if g.startswith(self.group)]
                self._groups = sorted(set(found) | {self.group})
        return self._groups

    async def offsets(self) -> dict[TopicPartition, int]:
        best: dict[TopicPartition, int] = {}
        for group in await self._group_ids():
            try:
                offsets = await self.admin.list_consumer_group_offsets(group, partitions=list(self.ends))
            except KafkaError:
                continue
            for tp, meta in offsets.items():
                if tp in self.ends and meta.offset > best.get(tp, 0):
                    best[tp] = meta.offset
        return best

    async def committed(self) -> int:
        return sum((await self.offsets()).values())

    async def progress(self) -> tuple[int, int]:
        """Events done so far, and how many of them were infrastructure readings."""
        if self.ports:
            counts = await asyncio.gather(*(asyncio.to_thread(consumed, port) for port in self.ports))
            return sum(c[0] for c in counts), sum(c[1] for c in counts)
        offsets = await self.offsets()
        return sum(offsets.values()), sum(v for tp, v in offsets.items() if tp.topic.endswith(".infrastructure"))

    async def members(self) -> tuple[str, int]:
        try:
            response = (await self.admin.describe_consumer_groups([self.members_of]))[0].to_object()
        except KafkaError:
            return "", 0
        group = response["groups"][0]
        return group["state"], sum(1 for m in group["members"] if m["member_assignment"])

    async def measure(self, name: str, pids: list[int], members: int, cap_s: float, alive: Any,
                      tail: float = 0.97, on_first_commit: Callable[[], object] | None = None) -> Run:
        """Sample every 0.2 s until the group committed ``tail`` of the backlog, or ``cap_s`` after its first commit.

        The window runs from the first commit seen while the group was stable with ``members`` members to the
        last commit before ``tail`` of the backlog was committed (the worker had work all along), or to the
        cap. A rebalance inside the window restarts it.
        """
        samples: list[Sample] = []
        started = time.monotonic()
        first_commit: float | None = None
        while True:
            await asyncio.sleep(0.2)
            state, active = await self.members()
            committed, infra = await self.progress()
            now = time.monotonic()
            samples.append(Sample(now, committed, infra, sum(cpu_seconds(p) for p in pids),
                                  state == "Stable" and active == members,
                                  {name: cpu_seconds(pid) for name, pid in self.others.items()}))
            if first_commit is None and committed > 0:
                first_commit = now
                if on_first_commit is not None:
                    on_first_commit()
            if committed >= tail * self.total:
                break
            if not alive():
                raise RuntimeError(f"{name}: a worker process died")
            if first_commit is not None and now - first_commit > cap_s:
                break
            if first_commit is None and now - started > 120:
                raise RuntimeError(f"{name}: no offsets committed within 120 s")
        peaks = [peak_rss_mib(p) for p in pids]
        return window(name, samples, self.total, tail, peaks, len(pids))


def consumed(port: int) -> tuple[int, int]:
    """A worker's ``emlops_events_consumed_total``: all topics, and the infrastructure topic's (0, 0 if it
    does not answer yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0, 0
    counts = [(s.labels["topic"], int(s.value)) for family in text_string_to_metric_families(text)
              for s in family.samples if s.name == "emlops_events_consumed_total"]
    return sum(n for _, n in counts), sum(n for topic, n in counts if topic.endswith(".infrastructure"))


def window(name: str, samples: list[Sample], total: int, tail: float, peaks: list[float], processes: int) -> Run:
    """The busy window from commit-change points: see GroupWatch.measure."""
    changes: list[Sample] = []
    previous = 0
    for s in samples:
        if not s.stable:
            changes = []  # a rebalance (or not yet everyone in): start over
        elif s.committed != previous:
            changes.append(s)
        previous = s.committed
    complete = samples[-1].committed >= tail * total
    busy = [s for s in changes if s.committed < tail * total]
    note = ""
    if len(busy) < 2:  # too short a run for the commit interval: fall back to first commit -> done
        busy = changes[:1] + changes[-1:]
        note = "short window (first commit to last)"
    if len(busy) == 2 and busy[-1].t - busy[0].t < 1.0:
        raise RuntimeError(f"the backlog was gone within 1 s of the group being stable with {processes} "
                           "member(s): too short to measure, run with more --events")
    if len(busy) < 2 or busy[-1].committed == busy[0].committed:
        raise RuntimeError(f"no progress while the group was stable with {processes} member(s)"
                           + (" (it never was)" if not any(s.stable for s in samples) else ""))
    a, b = busy[0], busy[-1]
    run = Run(name, b.committed - a.committed, b.t - a.t, b.cpu - a.cpu, peaks, processes, complete, note)
    run.infra_share = (b.infra - a.infra) / run.events if run.events else 0.0
    run.others_cores = {name: (b.others[name] - a.others[name]) / run.seconds for name in a.others}
    middle = min(busy, key=lambda sample: abs(sample.t - (a.t + b.t) / 2))
    if a.t < middle.t < b.t:
        run.late_rate = (b.committed - middle.committed) / (b.t - middle.t)
    return run


# --- the benchmark ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    events: int
    partitions: int
    passthrough_cap_s: float
    worker_cap_s: float
    latency_s: float
    memory_args: list[str]
    out: Path
    latency_at: float = 0.0  # events/s: run only the latency phase, at this rate


class Bench:
    def __init__(self, bootstrap: str, plan: Plan, broker_pid: int | None = None) -> None:
        self.bootstrap, self.plan, self.broker_pid = bootstrap, plan, broker_pid
        self.run_id = uuid.uuid4().hex[:6]
        self.prefix = f"bench-{self.run_id}."
        self.work = plan.out
        self.models, self.sources = fleet(partitions=plan.partitions)
        self.results: dict[str, Any] = {"loadavg": {}}

    def settings(self, prefix: str) -> Settings:
        return Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "EMLOPS_TOPIC_PREFIX": prefix,
                                  "EMLOPS_PARTITIONS": str(self.plan.partitions)})

    def worker_env(self, prefix: str, app_id: str, slot: str) -> dict[str, str]:
        data = self.work / f"data-{app_id}-{slot}"
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "EMLOPS_TOPIC_PREFIX": prefix,
            "EMLOPS_APP_ID": app_id,
            "EMLOPS_PARTITIONS": str(self.plan.partitions),
            "EMLOPS_WEB_PORT": str(free_port()),
            "EMLOPS_DATA_DIR": str(data),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }

    def note_load(self, phase: str) -> None:
        self.results["loadavg"][phase] = loadavg()

    # -- phase 0: topics and data

    async def produce_backlog(self, admin: AIOKafkaAdminClient) -> dict[TopicPartition, int]:
        settings = self.settings(self.prefix)
        await ensure_topics(settings)
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(self.prefix + "passthrough", self.plan.partitions, 1)])
        n = self.plan.events
        workload = Workload(self.models, self.sources, standard_incidents(self.models, self.sources, int(n * 0.6)))
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=20, max_batch_size=512 * 1024,
                                    max_request_size=8 * 1024 * 1024)
        await producer.start()
        kinds = {"prediction": 0, "label": 0, "infra": 0}
        nbytes = 0
        started = time.perf_counter()
        try:
            for sent, (kind, key, event) in enumerate(workload):
                if sent >= n:
                    break
                topic = settings.topics.infrastructure if kind == INFRASTRUCTURE else settings.topics.predictions
                value = codec.dumps(event)
                nbytes += len(value)
                kinds[event["type"]] += 1
                await producer.send(topic, value, key=key.encode())
            await producer.flush()
        finally:
            await producer.stop()
        seconds = time.perf_counter() - started
        self.results["backlog"] = {"events": n, "kinds": kinds, "mean_bytes": nbytes / n,
                                   "produce_rate": n / seconds}
        topics = [settings.topics.predictions, settings.topics.infrastructure]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(self.plan.partitions)]
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        per_partition = [sum(ends[TopicPartition(t, p)] for t in topics) for p in range(self.plan.partitions)]
        self.results["backlog"]["per_partition"] = per_partition
        log(f"produced {n:,} events ({kinds}), {nbytes / n:.0f} B mean, {n / seconds:,.0f}/s; "
            f"per partition {per_partition}")
        return ends

    # -- phase 1: raw aiokafka

    def raw(self, topics: list[str], decode: bool) -> Run:
        command = [sys.executable, "-m", "bench.raw_consumer", self.bootstrap, f"bench-{self.run_id}-raw{int(decode)}",
                   *topics, *(["--decode"] if decode else [])]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"raw consumer failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        return Run("raw aiokafka" + (" + orjson.loads" if decode else ""), r["events"], r["seconds"], r["cpu_s"],
                   [r["peak_rss_kib"] / 1024], note=f"{r['passes']} passes over the backlog")

    # -- phase 2: naive Faust

    async def passthrough(self, watch_ends: dict[TopicPartition, int], admin: AIOKafkaAdminClient) -> Run:
        app_id = f"bench-{self.run_id}-passthrough"
        topics = sorted({tp.topic for tp in watch_ends})
        env = {"BENCH_BOOTSTRAP": self.bootstrap, "BENCH_APP_ID": app_id, "BENCH_INPUTS": ",".join(topics),
               "BENCH_OUTPUT": self.prefix + "passthrough", "BENCH_PARTITIONS": str(self.plan.partitions),
               "BENCH_WEB_PORT": str(free_port()), "BENCH_DATA_DIR": str(self.work / f"data-{app_id}"),
               "PYTHONPATH": str(ROOT)}
        child = WorkerProcess(env, self.work / "passthrough.log", app="bench.passthrough", cwd=ROOT).start()
        try:
            watch = GroupWatch(admin, app_id, watch_ends)
            return await watch.measure("naive Faust passthrough", [child.pid], 1, self.plan.passthrough_cap_s,
                                       lambda: child.exit_code is None)
        except BaseException:
            log(child.log_tail())
            raise
        finally:
            child.stop()

    # -- phase 3 and 4: the emlops worker(s)

    async def workers(self, name: str, count: int, ends: dict[TopicPartition, int],
                      admin: AIOKafkaAdminClient, profile: bool = False) -> Run:
        """``count`` workers in one group. With ``profile``, py-spy samples the (single) worker from its first
        commit to the end of the window, without pausing it (--nonblocking), so the figures stay the worker's."""
        app_id = f"bench-{self.run_id}-{name}"
        procs = [WorkerProcess(self.worker_env(self.prefix, app_id, str(i)), self.work / f"{app_id}-{i}.log").start()
                 for i in range(count)]
        pids = [w.pid for w in procs]
        spies: list[Any] = []
        raw_path = self.work / "profile.txt"
        if profile and not profiling.available():
            self.results["failures"]["profile"] = "py-spy is not installed (pip install py-spy)"
            profile = False

        def start_profile() -> None:
            if profile:
                spies.append(profiling.start(pids[0], raw_path, self.work / "py-spy.log", rate=100))

        try:
            watch = GroupWatch(admin, app_id, ends, members_of=Settings(app_id=app_id).intake_group,
                               ports=[int(w.env["EMLOPS_WEB_PORT"]) for w in procs],
                               others={"broker": self.broker_pid, "benchmark": os.getpid()})
            label = "emlops worker" if count == 1 else f"emlops, {count} workers"
            run = await watch.measure(label, pids, count, self.plan.worker_cap_s,
                                      lambda: all(w.exit_code is None for w in procs), on_first_commit=start_profile)
        except BaseException:
            for w in procs:
                log(w.log_tail())
            raise
        finally:
            spy_cpu = sum(cpu_seconds(spy.pid) for spy in spies)
            codes = [await asyncio.to_thread(profiling.stop, spy) for spy in spies]
            for w in procs:
                w.stop()
        if spies:
            if codes[0] == 0 and raw_path.exists():
                self.results["profile"] = profiling.parse(raw_path.read_text())
                self.results["profile_file"] = str(raw_path)
                self.results["profiler_cpu_s"] = spy_cpu
            else:
                self.results["failures"]["profile"] = (self.work / "py-spy.log").read_text()[-300:]
        return run

    # -- phase 5: latency at half the sustained rate

    async def latency(self, rate: float, admin: AIOKafkaAdminClient) -> dict[str, Any]:
        prefix = f"bench-{self.run_id}-lat."
        settings = self.settings(prefix)
        await ensure_topics(settings)
        app_id = f"bench-{self.run_id}-latency"
        worker = WorkerProcess(self.worker_env(prefix, app_id, "0"), self.work / f"{app_id}.log").start()
        try:
            await self._wait_ready(worker, admin, app_id)
            duration = self.plan.latency_s
            n = int(rate * duration)
            # Drifts on one more feature every 0.75 s from 30% to 90% of the run, on every model in turn, plus
            # the standard six incidents at 50%: each one's first detection opens or updates a ticket at once.
            incidents: list[Incident] = standard_incidents(self.models, self.sources, int(n * 0.5))
            drifts = max(8, int(duration * 0.6 / 0.75))
            for k in range(drifts):
                model = self.models[k % len(self.models)]
                incidents.append(Incident("drift", model.name, int(n * (0.3 + 0.6 * k / drifts)),
                                          f"f{(k // len(self.models) + 5) % model.numeric}"))
            revisions: list[dict[str, Any]] = []
            detections: dict[tuple[float, str, str], float] = {}  # (event_time, kind, entity) -> published
            stop = asyncio.Event()
            reader = asyncio.create_task(self._read_outputs(settings, revisions, detections, stop))
            workload = Workload(self.models, self.sources, incidents, seed=29, clock=lambda: PRODUCE_TIME)
            items = list(itertools.islice(workload, n))
            encoded = [(settings.topics.infrastructure if kind == INFRASTRUCTURE else settings.topics.predictions,
                        key.encode(), codec.dumps(event)) for kind, key, event in items]
            # The first injected incident's first event: latencies count from there on (the issue measures them
            # on the injected incidents); those of the worker's first seconds are reported apart.
            onset = min(incident.at for incident in incidents)
            first = next(k for k, (_, _, event) in enumerate(items) if event["type"] == "prediction"
                         and int(event["request_id"].rsplit("-", 1)[1]) >= onset)
            # Who had the 2 cores while the events were produced: the worker, the broker (when it is local) and
            # this process (the paced producer and the reader of the outputs).
            pids = {"worker": worker.pid, "broker": self.broker_pid, "benchmark": os.getpid()}
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
            t0 = time.monotonic()
            with _yielding():
                produced, (started_time, onset_time) = await self._paced(encoded, rate, mark=first)
            elapsed = time.monotonic() - t0
            cores = {name: (cpu_seconds(pids[name]) - cpu) / elapsed for name, cpu in cpu0.items()}
            # The worker's own count of the events it processed (it commits only once a checkpoint is stored).
            port = int(worker.env["EMLOPS_WEB_PORT"])
            behind = produced - (await asyncio.to_thread(consumed, port))[0]
            caught_up: float | None = 0.0 if behind <= 0 else None
            watch = GroupWatch(admin, app_id, await self._ends(settings))
            ended = time.monotonic()
            while time.monotonic() - ended < 8:  # the last tickets, and one more commit
                if caught_up is None and (await asyncio.to_thread(consumed, port))[0] >= produced:
                    caught_up = time.monotonic() - ended
                await asyncio.sleep(0.1)
            lag_after = watch.total - await watch.committed()
            stop.set()
            await reader
        finally:
            worker.stop()
        caused = [r for r in revisions if DETECTION_REASONS.match(r["update_reason"]) and r.get("detections")]
        latencies, intake, routing, times, warmup = [], [], [], [], []
        for r in caused:
            d = r["detections"][-1]
            if d["event_time"] < onset_time:
                warmup.append((d["event_time"] - started_time, d["kind"], r["_published"] - d["event_time"]))
                continue
            times.append((d["event_time"], d["kind"]))  # epoch seconds: to find a slow one in the worker's log
            latencies.append(r["_published"] - d["event_time"])
            detected = detections.get(_detection_key(d))
            if detected is not None:  # split: event -> detection published, detection -> ticket published
                intake.append(detected - d["event_time"])
                routing.append(r["_published"] - detected)
        ms = lambda xs: [x * 1000 for x in xs]  # noqa: E731
        return {"rate": rate, "produced": produced, "revisions": len(revisions), "samples": len(latencies),
                "latencies_ms": ms(latencies), "intake_ms": ms(intake), "routing_ms": ms(routing),
                "detected": times, "onset_s": onset_time - started_time,
                "warmup": [(round(at, 2), kind, round(lat * 1000)) for at, kind, lat in warmup],
                "detections": len(detections), "cores": cores, "behind_at_end": behind, "caught_up_s": caught_up,
                "lag_after_8s": lag_after, "incidents_injected": len(incidents)}

    async def _wait_ready(self, worker: WorkerProcess, admin: AIOKafkaAdminClient, app_id: str) -> None:
        deadline = time.monotonic() + 120
        watch = GroupWatch(admin, app_id, {}, members_of=Settings(app_id=app_id).intake_group)
        while True:
            state, members = await watch.members()
            if state == "Stable" and members == 1 and "Ready" in worker.log_tail(200_000):
                return
            if worker.exit_code is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the latency worker did not get ready:\n{worker.log_tail()}")
            await asyncio.sleep(0.2)

    async def _ends(self, settings: Settings) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in (settings.topics.predictions, settings.topics.infrastructure)
                   for p in range(self.plan.partitions)]
            return await consumer.end_offsets(tps)
        finally:
            await consumer.stop()

    async def _paced(self, encoded: list[tuple[str, bytes, bytes]], rate: float, mark: int) -> tuple[int, float]:
        """Events (topic, key, value) sent in 5 ms slices, so the rate is smooth, each slice's stamped with
        time.time() as it goes. They were made and encoded beforehand, with :data:`PRODUCE_TIME` in place of
        that time: the producer shares the machine's 2 cores with the worker, and making each event as it was
        sent took 25 µs of them (a tenth of a core at 5,000 events/s). Returns how many were sent, and the
        times the first event and event number ``mark`` were stamped with."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        await producer.start()
        sent, n, marked = 0, len(encoded), NAN
        placeholder = codec.dumps(PRODUCE_TIME)
        started, first = time.monotonic(), time.time()
        try:
            while sent < n:
                due = min(n, int((time.monotonic() - started) * rate) + 1)
                wall = time.time()
                if sent <= mark < due:
                    marked = wall
                now = codec.dumps(wall)
                while sent < due:
                    topic, key, value = encoded[sent]
                    await producer.send(topic, value.replace(placeholder, now), key=key)
                    sent += 1
                await asyncio.sleep(0.005)
            await producer.flush()
        finally:
            await producer.stop()
        achieved = sent / (time.monotonic() - started)
        if achieved < 0.95 * rate:
            log(f"warning: the paced producer reached only {achieved:,.0f}/s of {rate:,.0f}/s")
        return sent, (first, marked)

    async def _read_outputs(self, settings: Settings, revisions: list[dict[str, Any]],
                            detections: dict[tuple[float, str, str], float], stop: asyncio.Event) -> None:
        """Ticket revisions and detections, each with its Kafka timestamp (CreateTime, set by the worker's
        producer when it sent the record)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for topic in (settings.topics.incidents, settings.topics.detections)
                   for p in range(self.plan.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                for tp, messages in batches.items():
                    for message in messages:
                        value = codec.loads(message.value)
                        published = message.timestamp / 1000
                        if tp.topic == settings.topics.detections:
                            if value.get("type") == "detection":
                                detections.setdefault(_detection_key(value), published)
                        else:
                            value["_published"] = published
                            revisions.append(value)
        finally:
            await consumer.stop()

    # -- phase 6 and 7: components and memory, in-process

    def components(self) -> dict[str, Any]:
        args = ["--warmup", "6000", "--events", "6000"] if self.plan.events < 60_000 else []
        done = subprocess.run([sys.executable, "-m", "bench.components", *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"bench.components failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for extra in ([], ["--rss"]):
            done = subprocess.run([sys.executable, "-m", "bench.memory", *self.plan.memory_args, *extra],
                                  capture_output=True, text=True, cwd=ROOT, timeout=400)
            if done.returncode != 0:
                raise RuntimeError(f"bench.memory failed:\n{done.stderr[-3000:]}")
            out.update(json.loads(done.stdout.strip().splitlines()[-1]))
        return out

    # -- all of it

    def run_sync(self) -> dict[str, Any]:
        return asyncio.run(self.run())

    async def phase(self, label: str, name: str, work: Any) -> Any:
        """One phase; a failure is recorded and reported, and the benchmark goes on with the next one."""
        log(label)
        try:
            result = await work
        except Exception as exc:  # noqa: BLE001 (the table shows what failed; the other figures still count)
            log(f"{name} failed: {exc}")
            self.results["failures"][name] = str(exc).splitlines()[0][:300]
            result = None
        self.note_load(name)
        return result

    async def run(self) -> dict[str, Any]:
        self.results["failures"] = {}
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        runs: dict[str, Run | None] = {}
        self.results["runs"] = runs
        try:
            self.note_load("start")
            if self.plan.latency_at:  # only the latency phase, at a given rate (to work on the latency alone)
                self.results["latency"] = await self.phase(
                    f"latency only: {self.plan.latency_at:,.0f} events/s for {self.plan.latency_s:.0f} s",
                    "latency", self.latency(self.plan.latency_at, admin))
                return self.results
            ends = await self.produce_backlog(admin)
            topics = sorted({tp.topic for tp in ends})
            runs["raw"] = await self.phase("1/7 raw aiokafka", "raw", asyncio.to_thread(self.raw, topics, False))
            runs["raw_decode"] = await self.phase("   raw aiokafka + orjson", "raw_decode",
                                                  asyncio.to_thread(self.raw, topics, True))
            for run in (runs["raw"], runs["raw_decode"]):
                if run is not None:
                    run.infra_share = self.results["backlog"]["kinds"]["infra"] / self.plan.events
            runs["faust"] = await self.phase("2/7 naive Faust passthrough", "faust", self.passthrough(ends, admin))
            runs["worker"] = await self.phase("3/7 emlops worker, profiled with py-spy", "worker",
                                              self.workers("worker", 1, ends, admin, profile=True))
            runs["two"] = await self.phase("4/7 two emlops workers", "two", self.workers("two", 2, ends, admin))
            worker = runs["worker"]
            if worker is not None and worker.rate > 0:
                rate = worker.rate / 2
                self.results["latency"] = await self.phase(
                    f"5/7 latency at half the sustained rate: {rate:,.0f} events/s for {self.plan.latency_s:.0f} s",
                    "latency", self.latency(rate, admin))
        finally:
            if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):  # leave nothing behind on someone's cluster
                with contextlib.suppress(KafkaError):
                    mine = [t for t in await admin.list_topics() if t.startswith(f"bench-{self.run_id}")]
                    if mine:
                        await admin.delete_topics(mine)
                        log(f"deleted the {len(mine)} topics of this run")
            await admin.close()
        self.results["components"] = await self.phase("6/7 hot-path components (in-process, CPU time per event)",
                                                      "components", asyncio.to_thread(self.components))
        self.results["memory"] = await self.phase("7/7 memory (in-process, tracemalloc over models.fleet)",
                                                  "memory", asyncio.to_thread(self.memory))
        return self.results


@contextlib.contextmanager
def _yielding(niceness: int = 10) -> Iterator[None]:
    """This thread (the paced producer and the reader) at a lower priority. They stand for services on other
    machines but share the 2 cores here, and at the worker's own priority they took its CPU when it had
    events waiting: at 5,000 events/s, p50 102-123 ms rather than 36-55. An event's timestamp is taken just
    before it is sent, so a wait this adds to the producer counts against the worker, never for it."""
    thread = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, thread)
    os.setpriority(os.PRIO_PROCESS, thread, before + niceness)
    try:
        yield
    finally:
        with contextlib.suppress(PermissionError):  # only root may raise a priority back
            os.setpriority(os.PRIO_PROCESS, thread, before)


def _detection_key(d: dict[str, Any]) -> tuple[float, str, str]:
    return d["event_time"], d["kind"], json.dumps(d["entity"], sort_keys=True)


# --- report ----------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples p99 is the maximum, as it should read)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // (1024 * 1024)
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


NAN = float("nan")
RUN_NAMES = {"raw": "raw aiokafka", "raw_decode": "raw aiokafka + orjson.loads", "faust": "naive Faust passthrough",
             "worker": "emlops worker", "two": "emlops, 2 workers"}


def _rate(run: Run | None) -> float:
    return run.rate if run is not None and run.rate > 0 else NAN


def latency_lines(lat: dict[str, Any] | None, paced: str, failures: dict[str, str]) -> Iterator[str]:
    if lat is None:
        yield f"latency: not measured ({failures.get('latency', 'no single-worker rate to pace at')})"
        return
    lats = lat["latencies_ms"]
    p50, p99 = percentile(lats, 50), percentile(lats, 99)
    yield (f"latency: event produce time -> ticket revision timestamp on incidents, at {lat['rate']:,.0f} "
           f"events/s ({paced}), {lat['produced']:,} events, {lat['incidents_injected']} incidents injected:")
    yield (f"         p50 {p50:.0f} ms, p90 {percentile(lats, 90):.0f} ms, p99 {p99:.0f} ms, max "
           f"{max(lats) if lats else NAN:.0f} ms over {lat['samples']} detection-caused revisions "
           f"(of {lat['revisions']} revisions) of events from the first injected incident on")
    if lat["warmup"]:
        yield (f"         before it ({lat['onset_s']:.0f} s into the run, with the worker's cold start: monitors "
               f"made, the first checkpoint written): {len(lat['warmup'])} more, max "
               f"{max(ms for _, _, ms in lat['warmup']):.0f} ms")
    caught_up = "not within 8 s" if lat["caught_up_s"] is None else f"{lat['caught_up_s']:.1f} s later"
    yield (f"         the worker had {lat['behind_at_end']:,} events left to process when production ended (caught "
           f"up {caught_up}; uncommitted 8 s later: {lat['lag_after_8s']:,})")
    yield "         cores used while producing: " + ", ".join(
        f"{name} {cores:.2f}" for name, cores in lat["cores"].items()) + " (benchmark: paced producer and reader)"
    if lat["intake_ms"]:
        yield (f"         split: event -> detection on the detections topic p50 "
               f"{percentile(lat['intake_ms'], 50):.0f} / p99 {percentile(lat['intake_ms'], 99):.0f} ms; "
               f"detection -> ticket p50 {percentile(lat['routing_ms'], 50):.0f} / p99 "
               f"{percentile(lat['routing_ms'], 99):.0f} ms")
    if lat["behind_at_end"] > 2 * lat["rate"]:
        yield (f"         the worker fell behind (more than 2 s of input unprocessed when production ended): it got "
               f"{lat['cores']['worker']:.2f} cores, so these latencies measure its backlog, not its hot path")
    yield "         targets: p50 <= 20 ms, p99 <= 250 ms"


def report(results: dict[str, Any], plan: Plan, broker: str) -> Iterator[str]:
    runs: dict[str, Run | None] = results["runs"]
    failures: dict[str, str] = results.get("failures", {})
    backlog = results["backlog"]
    kinds = backlog["kinds"]
    worker_rate, faust_rate, raw_rate, two_rate = (_rate(runs.get(k)) for k in ("worker", "faust", "raw", "two"))
    ratio_faust = worker_rate / faust_rate
    ratio_two = two_rate / worker_rate
    worker = runs.get("worker")
    cpu_per_event = worker.cpu_us_per_event if worker is not None else NAN

    yield f"machine:  {machine()}"
    yield ("monitors: numeric step compiled (models/_numeric.c)" if signals._numeric is not None
           else "monitors: numeric step on numpy (models/_numeric.c was not built: no C compiler at install)")
    yield f"broker:   {broker}; {plan.partitions} partitions per topic"
    yield (f"workload: {backlog['events']:,} events = {kinds['prediction']:,} predictions + {kinds['label']:,} labels "
           f"+ {kinds['infra']:,} infrastructure readings; mean {backlog['mean_bytes']:.0f} B; per partition "
           f"{backlog['per_partition']}")
    yield "          8 models with 12-48 numeric + 2 categorical features (4 binary classifiers with 30% labelled,"
    yield "          2 multiclass, 2 regressors), 6 services x 5 metrics, 2 pipelines; 6 incidents injected at 60%"
    yield "load:     1-min load average " + ", ".join(f"{k} {v:.1f}" for k, v in results["loadavg"].items())
    cores = os.cpu_count() or 1
    if max(results["loadavg"].values()) > cores:
        yield (f"          the machine was busy (load above its {cores} cores): events/s are lower bounds; CPU per "
               "event and events per CPU-second are the figures to compare")
    share = kinds["infra"] / backlog["events"]
    odd = [r.name for r in runs.values() if r is not None and r.infra_share is not None
           and abs(r.infra_share - share) > 0.04]
    if odd:
        yield (f"          workload infra share {share:.0%}; windows with another mix (capped before the backlog was "
               f"gone; Faust drains the small topic first): {', '.join(odd)}")
    yield ""
    yield ("| consumer | events/s | per process | vs Faust | CPU µs/event | events per CPU-s | cores used | "
           "peak RSS MiB | window | infra share |")
    yield "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
    for key, name in RUN_NAMES.items():
        run = runs.get(key)
        if run is None:
            yield f"| {name} | failed: {failures.get(key, 'not run')} | | | | | | | | |"
            continue
        rss = " + ".join(f"{p:.0f}" for p in run.peak_rss_mib)
        window_text = f"{run.events:,} ev / {run.seconds:.1f} s" + ("" if run.complete else ", capped") + \
            (f", {run.note}" if run.note else "") + \
            (f"; second half {run.late_rate:,.0f}/s" if run.late_rate else "")
        yield (f"| {run.name} | {run.rate:,.0f} | {run.rate_per_process:,.0f} | {_rate(run) / faust_rate:.2f}x | "
               f"{run.cpu_us_per_event:.0f} | {run.events_per_cpu_s:,.0f} | {run.cores:.2f} | {rss} | {window_text} | "
               f"{(run.infra_share or 0):.0%} |")
    yield ""
    yield (f"ratios: emlops / naive Faust = {ratio_faust:.2f}x (target >= 5x); emlops / raw aiokafka = "
           f"{worker_rate / raw_rate:.3f}; two workers / one = {ratio_two:.2f}x (target >= 1.7x)")
    shares = [f"{run.name}: {run.cores:.2f}, " + ", ".join(f"{k} {v:.2f}" for k, v in run.others_cores.items())
              for run in (runs.get("worker"), runs.get("two")) if run is not None and run.others_cores]
    if shares:
        yield f"cores over the windows of {os.cpu_count()}: " + "; ".join(shares)
    lat = results.get("latency")
    p99 = percentile(lat["latencies_ms"], 99) if lat is not None else NAN
    yield from latency_lines(lat, f"half of {worker_rate:,.0f}", failures)
    mem = results.get("memory")
    if mem is None:
        yield f"memory: not measured ({failures.get('memory', '')})"
    else:
        yield "memory (in-process, tracemalloc over models.fleet; not the worker's RSS):"
        yield (f"         {mem['bytes_per_numeric_feature']:,.0f} B per monitored numeric feature (marginal, "
               f"{mem['numeric_features']:,} features) - target <= 16 KiB")
        yield (f"         {mem['bytes_per_anomaly_model'] / 1024 / 1024:.2f} MiB per infrastructure anomaly model "
               f"({mem['anomaly_models']} sources x 5 metrics) - target <= 1.5 MiB")
        yield f"         {mem['bytes_per_pending_label']:,.0f} B per prediction waiting in the label join"
        yield (f"         RSS of a process monitoring {mem['rss_features']:,} numeric features and "
               f"{mem['rss_services']} services: {mem['rss_mib']:.0f} MiB ({mem['rss_base_mib']:.0f} MiB after "
               f"imports + {mem['rss_monitors_mib']:.0f} MiB monitors) - target < 256 MiB")
    comp = results.get("components")
    if comp is not None:
        yield ("hot-path components (in-process CPU time per event on this workload, monitors warmed up; "
               "bench/components.py):")
        yield (f"         orjson loads {comp['orjson_loads_us']:.1f} µs, schema decode {comp['schema_decode_us']:.1f} "
               f"µs, model monitors {comp['model_monitors_us_per_model_event']:.0f} µs per prediction/label, service "
               f"monitor {comp['service_monitor_us_per_infra_event']:.0f} µs per infrastructure reading, metrics "
               f"tally {comp['metrics_tally_us']:.1f} µs")
        yield (f"         = {comp['total_us']:.0f} µs per event of the mix: at most {1e6 / comp['total_us']:,.0f} "
               f"events/s per core if Kafka and Faust cost nothing (the worker spends {cpu_per_event:.0f} µs)")
    profile: profiling.Profile | None = results.get("profile")
    if profile is not None:
        yield (f"profile: py-spy --nonblocking at 100 Hz on the emlops worker over its measured window, "
               f"{profile.samples:,} samples ({results['profile_file']}; py-spy itself used "
               f"{results.get('profiler_cpu_s', 0):.1f} CPU s); {profile.waiting:.0%} of samples waiting in the "
               "selector, the shares below are of the rest")
        yield (f"         where the worker's CPU goes (share of busy samples x the {cpu_per_event:.0f} µs/event "
               "measured above):")
        for name, part in profile.stages:
            yield f"           {part:6.1%}  {part * cpu_per_event:5.0f} µs/event  {name}"
        yield "         self time by package: " + ", ".join(f"{p} {x:.0%}" for p, x in profile.by_package[:8])
        yield "         top self time:"
        for name, part in profile.self_time[:12]:
            yield f"           {part:6.1%}  {name}"
        yield "         top total time (event loop and CLI frames left out):"
        for name, part in profile.total_time[:15]:
            yield f"           {part:6.1%}  {name}"
    elif "profile" in failures:
        yield f"profile: failed ({failures['profile']})"
    yield ""
    yield (f"summary: worker={worker_rate:.0f} naive_faust={faust_rate:.0f} raw_aiokafka={raw_rate:.0f} "
           f"ratio_vs_faust={ratio_faust:.2f} p99_ms={p99:.0f} two_workers_ratio={ratio_two:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="events pre-produced (default 600,000; quick 60,000)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 to 4 minutes)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the bench topics (EMLOPS_PARTITIONS)")
    parser.add_argument("--latency-at", type=float, default=0.0, metavar="EVENTS_PER_S",
                        help="run only the latency phase, fed at this rate")
    parser.add_argument("--out", type=Path, default=None, help="logs, profile and results (default: a temp dir)")
    args = parser.parse_args()
    quick = args.quick
    out = args.out or Path(tempfile.mkdtemp(prefix="emlops-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    plan = Plan(
        events=args.events or (60_000 if quick else 600_000),
        partitions=args.partitions,
        passthrough_cap_s=20 if quick else 45,
        worker_cap_s=25 if quick else 50,
        latency_s=30 if quick else 40,
        memory_args=(["--models", "10", "--events", "520", "--services", "20", "--service-events", "300"] if quick
                     else ["--models", "24", "--events", "520", "--services", "24", "--service-events", "300"]),
        out=out,
        latency_at=args.latency_at,
    )
    started = time.monotonic()
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker: LocalBroker | None = None
    if external:
        bootstrap, broker_text = external, f"external cluster {external}"
    else:
        port = free_port()
        controller = free_port()
        while controller == port:
            controller = free_port()
        broker = LocalBroker(out / "broker", port=port, controller_port=controller)
        log(f"starting a local Kafka broker on 127.0.0.1:{port} in {out / 'broker'}")
        bootstrap = broker.start()
        broker_text = "local Apache Kafka 4.1.1 (KRaft, one node, loopback, same machine)"
    try:
        broker_pid = int(broker.pid_file.read_text()) if broker is not None else None
        results = Bench(bootstrap, plan, broker_pid).run_sync()
    finally:
        if broker is not None:
            broker.stop()
    results_path = out / "results.json"
    serialisable = {k: v for k, v in results.items() if k not in ("runs", "profile")}
    serialisable["runs"] = {k: r and {**vars(r), "rate": r.rate} for k, r in results["runs"].items()}
    if results.get("profile") is not None:
        serialisable["profile"] = vars(results["profile"])
    results_path.write_text(json.dumps(serialisable, indent=1, default=str))
    if plan.latency_at:
        lines = list(latency_lines(results.get("latency"), "given", results["failures"]))
    else:
        lines = list(report(results, plan, broker_text))
    print(f"command:  python bench/throughput.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"took:     {time.monotonic() - started:.0f} s; logs, profile and results.json in {out}")
    for line in lines:
        print(line)
    for leftover in [*out.glob("data-*"), out / "broker" / "data"]:  # Faust data dirs, the broker's log segments
        shutil.rmtree(leftover, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
