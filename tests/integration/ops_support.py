"""Helpers for the ops-view tests: real worker processes with the web API on free ports, a small HTTP
client, Prometheus parsing and topic counting."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from app.broker import free_port
from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from models import codec
from tests.brokers import worker_env

TOKEN = "it-token-8d1f0c"


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any
    text: str = field(repr=False, default="")


def http(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10) -> Answer:
    """One request; JSON bodies are encoded and decoded; an HTTP error status is an answer, not an exception."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    text = raw.decode(errors="replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return Answer(status, headers, parsed, text)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    """Poll until ``check()`` returns something truthy; fail naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, KeyError, ValueError) as exc:  # not up yet, or not there yet
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout}s waiting for {what}; last: {last!r}"[:3000])


@dataclass
class Cluster:
    settings: Settings
    urls: list[str]
    workers: list[WorkerProcess]

    def check_alive(self) -> None:
        for url, worker in zip(self.urls, self.workers):
            if worker.exit_code is not None:
                raise AssertionError(f"worker {url} died (exit {worker.exit_code}):\n{worker.log_tail()}")


def _ready(url: str, token: str | None) -> bool:
    return http("GET", f"{url}/ready", token=token, timeout=3).status == 200


@contextmanager
def ops_workers(bootstrap: str, work: Path, count: int = 1, env: Mapping[str, str] | None = None,
                token: str | None = TOKEN) -> Iterator[Cluster]:
    """``count`` workers of one app on their own topics, each with its web server on a free port; yields
    once every worker is ready and (with several) every worker sees all of them."""
    base = worker_env(bootstrap, "ops", work / "data0",
                      **{"EMLOPS_TICK_INTERVAL_S": "1", "EMLOPS_API_TOKEN": token or "", **(env or {})})
    settings = Settings.from_env(base)
    asyncio.run(ensure_topics(settings))
    urls, workers = [], []
    with ExitStack() as stack:
        for i in range(count):
            port = free_port()
            one = {**base, "EMLOPS_WEB_PORT": str(port), "EMLOPS_DATA_DIR": str(work / f"data{i}")}  # same app
            workers.append(stack.enter_context(WorkerProcess(one, work / f"worker{i}.log")))
            urls.append(f"http://127.0.0.1:{port}")
        cluster = Cluster(settings, urls, workers)

        def all_ready() -> bool:
            cluster.check_alive()
            if not all(_ready(u, token) for u in urls):
                return False
            if count == 1:
                return True
            for u in urls:  # every worker's view of the cluster holds them all, each owning partitions
                answer = http("GET", f"{u}/api/v1/workers", token=token, timeout=5)
                seen = {w["url"]: w for w in (answer.body or {}).get("workers", [])}
                if set(seen) != set(urls) or not all(w.get("ready") and any(w["partitions"].values())
                                                     for w in seen.values()):
                    return False
            return True

        try:
            wait_for(all_ready, 180, f"{count} ready worker(s)", every=0.5)
        except AssertionError as exc:
            logs = "\n".join(f"--- {u}\n{w.log_tail(2000)}" for u, w in zip(urls, workers))
            raise AssertionError(f"{exc}\n{logs}") from None
        yield cluster
        cluster.check_alive()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed with prometheus_client's text parser: (sample name, sorted labels) -> value."""
    answer = http("GET", f"{url}/metrics")
    assert answer.status == 200, answer.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def by_label(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
             label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name and v}


async def _read_all(settings: Settings, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(auto_offset_reset="earliest", enable_auto_commit=False,
                                **settings.kafka_client_options())
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        for tp in partitions:
            await consumer.seek_to_beginning(tp)
        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batches = await consumer.getmany(timeout_ms=500)
            records += [r for rs in batches.values() for r in rs]
        return records
    finally:
        await consumer.stop()


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every record on ``topic`` now, from the beginning to the current end offsets."""
    return asyncio.run(_read_all(settings, topic))


def detection_kinds(settings: Settings) -> Counter[str]:
    values = (codec.loads(r.value) for r in read_all(settings, settings.topics.detections))
    return Counter(v["kind"] for v in values if isinstance(v, dict) and v.get("type") == "detection")


def ticket_revisions(settings: Settings) -> list[dict[str, Any]]:
    return [codec.loads(r.value) for r in read_all(settings, settings.topics.incidents)]
