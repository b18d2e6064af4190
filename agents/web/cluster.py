"""Which worker answers what, when several workers share the partitions.

- **One incident** (and actions on it): the incidents table is partitioned like the detections topic, so
  a dedup key lives on the worker that owns its partition. Faust's partition assignor publishes which
  worker (by its ``canonical_url``) holds which table partition; a request for a key held elsewhere is
  forwarded to that worker and its answer returned as it is (Faust's own ``table_route`` proxy would drop
  the request body and the response headers, so this one forwards both).
- **Lists** (incidents, models, services, workers): each worker answers for the partitions it owns
  (``scope=local``) and the worker that got the request asks the others and merges the answers; a worker
  that does not answer makes the list ``partial`` instead of failing it.

Every answer names the worker that produced it in the ``X-Emlops-Worker`` header.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Iterable, Mapping

import aiohttp
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from yarl import URL

from models import codec

log = logging.getLogger(__name__)

WORKER_HEADER = "X-Emlops-Worker"
ROUTED_FROM_HEADER = "X-Emlops-Routed-From"
FORWARDED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept")
FORWARDED_RESPONSE_HEADERS = (WORKER_HEADER, ROUTED_FROM_HEADER, "WWW-Authenticate", "Retry-After")
TIMEOUT_S = 5.0


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (and so Faust's router) picks for a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def owner_of(partition: int, topic: str, distribution: Mapping[str, Mapping[str, Iterable[int]]]) -> str | None:
    """The worker URL whose active partitions of ``topic`` include ``partition``."""
    for url, topics in distribution.items():
        if partition in set(topics.get(topic, ())):
            return url
    return None


def _on(url: str, raw_path_qs: str) -> URL:
    """The same path and query (already percent-encoded, kept as they are) on another worker."""
    return URL(f"{URL(url).origin()}{raw_path_qs}", encoded=True)


def same_worker(a: str | URL, b: str | URL) -> bool:
    ua, ub = URL(str(a)), URL(str(b))
    return (ua.host, ua.port) == (ub.host, ub.port)


class Cluster:
    """The workers of this app as its partition assignor sees them; ``app`` and ``table`` are Faust's."""

    def __init__(self, app: Any, table: Any, partitions: int,
                 inputs: Callable[[], Iterable[Any]] = tuple) -> None:
        self.app = app
        self.table = table
        self.partitions = partitions
        self.inputs = inputs  # the input partitions this worker's intake reads (its own consumer group)

    @property
    def me(self) -> str:
        return str(self.app.conf.canonical_url)

    def _distribution(self) -> Mapping[str, Mapping[str, Iterable[int]]]:
        try:
            return self.app.router.table_metadata(self.table.name) or {}
        except Exception:  # no assignment yet
            return {}

    def workers(self) -> list[str]:
        """Every worker that holds partitions of any table, this one first."""
        try:
            urls = set(self.app.router.tables_metadata() or {})
        except Exception:
            urls = set()
        others = sorted(u for u in urls if not same_worker(u, self.me))
        return [self.me, *others]

    def owner(self, key: bytes) -> str | None:
        topic = self.table.changelog_topic.get_topic_name()
        return owner_of(partition_of(key, self.partitions), topic, self._distribution())

    def owns(self, key: bytes) -> bool:
        owner = self.owner(key)
        return owner is not None and same_worker(owner, self.me)

    def owned_partitions(self) -> set[int]:
        """The table partitions this worker is the active owner of, as the assignor published them."""
        topic = self.table.changelog_topic.get_topic_name()
        return {p for url, topics in self._distribution().items() if same_worker(url, self.me)
                for p in topics.get(topic, ())}

    def active(self, topic: str) -> set[int]:
        """Partitions of ``topic`` this worker owns (not standbys), in Faust's group or the intake's."""
        try:
            faust = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        except Exception:  # no assignment yet
            faust = set()
        return faust | {tp.partition for tp in self.inputs() if tp.topic == topic}

    def owns_input(self, topic: str, key: str) -> bool:
        return partition_of(key.encode(), self.partitions) in self.active(topic)

    async def fetch(self, url: str, path_qs: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        """GET one worker's JSON answer: (status, body); a failure is (0, reason)."""
        target = _on(url, path_qs)
        try:
            async with self.app.http_client.get(
                target, headers={**headers, ROUTED_FROM_HEADER: self.me},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            ) as response:
                body = await response.read()
                return response.status, codec.loads(body) if body else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    async def forward(self, url: str, request: Any) -> tuple[int, bytes, dict[str, str]]:
        """Send the request as it is to another worker; (status, body, headers to pass back)."""
        target = _on(url, request.rel_url.raw_path_qs)
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in request.headers}
        headers[ROUTED_FROM_HEADER] = self.me
        body = await request.read() if request.can_read_body else None
        async with self.app.http_client.request(
            request.method, target, headers=headers, data=body, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
        ) as response:
            payload = await response.read()
            passed = {h: response.headers[h] for h in FORWARDED_RESPONSE_HEADERS if h in response.headers}
            passed["Content-Type"] = response.headers.get("Content-Type", "application/json")
            return response.status, payload, passed
