"""A message that cannot be used goes to the dead-letter topic with the reason and its origin in headers."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from agents.metrics import metrics

log = logging.getLogger(__name__)


async def dead_letter(send: Callable[..., Awaitable[Any]], message: Any, reason: str) -> None:
    """``message`` is a Faust message or an aiokafka record (both have topic, partition, offset, key, value);
    ``send(key=, value=, headers=)`` puts the dead letter on its topic."""
    metrics.dead_lettered[message.topic] += 1
    log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
    await send(
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=[
            ("emlops.reason", reason.encode()),
            ("emlops.origin.topic", message.topic.encode()),
            ("emlops.origin.partition", str(message.partition).encode()),
            ("emlops.origin.offset", str(message.offset).encode()),
        ],
    )
