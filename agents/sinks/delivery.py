"""One sink: a bounded in-memory queue and one sender that posts each ticket revision in order, retrying
recoverable failures with backoff and giving up into a callback (the agent dead-letters it).

The stream never waits for a sink: ``offer`` only enqueues, and a full queue gives the revision up at once.
Revisions of one sink are delivered one at a time in the order they were offered, so a receiver never sees
an incident's resolution before its trigger, even after it was down for a while.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

import aiohttp

from app.config import SinkSpec
from models import codec
from models.adapters import alertmanager, pagerduty
from models.adapters.delivery import FAIL, OK, classify

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    ticket: Mapping[str, Any]
    body: dict[str, Any]
    context: Any = None  # what the agent needs to dead-letter it (the incidents record)
    attempts: int = 0


GiveUp = Callable[["SinkWorker", Delivery, str], Awaitable[None]]


class SinkStats:
    """Outcomes by sink: delivered, retried (one per failed attempt that is retried), failed, dropped."""

    def __init__(self, on_count: Callable[[str, str], None] | None = None) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._on_count = on_count

    def count(self, sink: str, outcome: str) -> None:
        self.counts[(sink, outcome)] += 1
        if self._on_count is not None:
            self._on_count(sink, outcome)

    def snapshot(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (sink, outcome), n in self.counts.items():
            out.setdefault(sink, {})[outcome] = n
        return out


def payload(spec: SinkSpec, ticket: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    """The request body this sink's receiver expects for one ticket revision."""
    if spec.type == "pagerduty":
        assert spec.routing_key is not None
        return pagerduty.event(ticket, spec.routing_key, client_url=spec.external_url or None, extra_details=extra)
    return alertmanager.webhook_payload(ticket, spec.name, spec.external_url, extra_labels=extra)


class SinkWorker:
    def __init__(
        self,
        spec: SinkSpec,
        give_up: GiveUp,
        stats: SinkStats,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self.give_up = give_up
        self.stats = stats
        self.clock = clock
        self.sleep = sleep
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=spec.queue_size)
        self._drops: set[asyncio.Task[None]] = set()

    def offer(self, ticket: Mapping[str, Any], extra: Mapping[str, str] | None = None, context: Any = None) -> bool:
        """Queue one revision without waiting; False (and given up) when the queue is full."""
        delivery = Delivery(ticket, payload(self.spec, ticket, extra or {}), context)
        try:
            self.queue.put_nowait(delivery)
            return True
        except asyncio.QueueFull:
            self.stats.count(self.spec.name, "dropped")
            task = asyncio.ensure_future(self._hand_over(delivery, f"sink queue full ({self.spec.queue_size})"))
            self._drops.add(task)
            task.add_done_callback(self._drops.discard)
            return False

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Deliver queued revisions, one at a time, until cancelled."""
        while True:
            delivery = await self.queue.get()
            try:
                await self.deliver(session, delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must cost one delivery, not the sink
                log.exception("sink %s failed on a delivery", self.spec.name)
                await self._give_up(delivery, f"internal error: {type(exc).__name__}: {exc}")
            finally:
                self.queue.task_done()

    async def deliver(self, session: aiohttp.ClientSession, delivery: Delivery) -> bool:
        backoff, name = self.spec.backoff, self.spec.name
        started = self.clock()
        while True:
            delivery.attempts += 1
            status, detail = await self._post(session, delivery.body)
            outcome = classify(status)
            if outcome == OK:
                self.stats.count(name, "delivered")
                return True
            if outcome == FAIL:
                await self._give_up(delivery, f"not retryable: {detail}")
                return False
            elapsed = self.clock() - started
            if backoff.gives_up(delivery.attempts, elapsed):
                await self._give_up(delivery, f"gave up after {delivery.attempts} attempt(s) in {elapsed:.1f}s: {detail}")
                return False
            self.stats.count(name, "retried")
            delay = backoff.delay(delivery.attempts)
            log.warning("sink %s: attempt %d for %s failed (%s); retrying in %.1fs", name, delivery.attempts,
                        delivery.ticket.get("dedup_key"), detail, delay)
            await self.sleep(delay)

    async def _give_up(self, delivery: Delivery, reason: str) -> None:
        self.stats.count(self.spec.name, "failed")
        log.error("sink %s gave up on %s revision %s: %s", self.spec.name, delivery.ticket.get("dedup_key"),
                  delivery.ticket.get("revision"), reason)
        await self._hand_over(delivery, reason)

    async def _hand_over(self, delivery: Delivery, reason: str) -> None:
        """Give a revision up to the callback; a failing callback is logged, never the end of the sink."""
        try:
            await self.give_up(self, delivery, reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sink %s could not hand over %s revision %s (%s)", self.spec.name,
                          delivery.ticket.get("dedup_key"), delivery.ticket.get("revision"), reason)

    async def _post(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int | None, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "emlops", **self.spec.headers}
        try:
            async with session.post(self.spec.url, data=codec.dumps(body), headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=self.spec.timeout_s)) as response:
                text = (await response.text(errors="replace"))[:200]
                return response.status, f"HTTP {response.status} {text}".strip()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc or 'timeout'}"

    async def drain(self) -> None:
        """Wait until every queued revision was delivered or given up (tests, shutdown)."""
        await self.queue.join()
        if self._drops:
            await asyncio.gather(*self._drops)
