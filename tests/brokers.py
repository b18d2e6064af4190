"""Starting a throw-away local broker for a test: free ports, and a failure (never a skip) if it won't start."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.broker import BrokerError, LocalBroker, free_port


def worker_env(bootstrap: str, name: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a worker no other test shares: its own app id (consumer group), topics, web port
    and data directory; ``settings`` adds or overrides EMLOPS_* variables."""
    run = f"emlops-{name}-{uuid.uuid4().hex[:8]}"
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EMLOPS_APP_ID": run, "EMLOPS_TOPIC_PREFIX": f"{run}.",
            "EMLOPS_WEB_PORT": str(free_port()), "EMLOPS_DATA_DIR": str(data_dir), **settings}


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@contextmanager
def running_broker(data_dir: Path, ports: list[int] | None = None, **options: Any) -> Iterator[LocalBroker]:
    """A broker on ``ports`` (client, controller; free ones by default), stopped afterwards. A broker that
    cannot start fails the test: a skipped integration test would pass silently where it matters."""
    port, controller_port = ports or free_ports(2)
    broker = LocalBroker(data_dir, port=port, controller_port=controller_port, **options)
    failure = None
    try:
        broker.start()
    except BrokerError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(f"could not start a local Kafka broker: {failure}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()
