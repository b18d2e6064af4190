"""Fixtures every broker-backed test folder shares, defined once so a run starts one broker, not one per
folder: the cluster named by KAFKA_BOOTSTRAP_SERVERS, or else a broker started here from the Maven jars
(shared jar cache, throw-away data dir, free ports)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from app.broker import LocalBroker
from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from tests.brokers import running_broker, worker_env


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """None when an external cluster is configured. A broker that cannot start fails the tests: a
    skipped integration suite would pass silently on exactly the machines where it matters."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    with running_broker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def bootstrap(local_broker: LocalBroker | None) -> str:
    if local_broker is None:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return local_broker.bootstrap


@pytest.fixture(scope="session")
def pipeline(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real worker process on its own topics; tests tell their data apart by model and source names."""
    work = tmp_path_factory.mktemp("worker")
    # Quiet incidents resolve quickly; repeats never add revisions, so revision sequences are exact.
    env = worker_env(bootstrap, "it", work / "data", EMLOPS_TICK_INTERVAL_S="1", EMLOPS_RESOLVE_AFTER_S="8",
                     EMLOPS_GROUP_INTERVAL_S="3600")
    settings = Settings.from_env(env)
    asyncio.run(ensure_topics(settings))
    with WorkerProcess(env, work / "worker.log") as worker:
        worker.wait_ready()
        yield settings
        if worker.exit_code is not None:
            pytest.fail(f"the worker died (exit {worker.exit_code}):\n{worker.log_tail()}", pytrace=False)
