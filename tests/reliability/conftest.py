"""Reliability and security tests: real brokers and real worker processes, broken on purpose.

The PLAINTEXT broker fixtures (``local_broker``, ``bootstrap``, ``pipeline``) come from tests/conftest.py,
shared with tests/integration. ``scram_broker`` is a broker of its own with SASL/SCRAM listeners (plain
and TLS); it is started whatever KAFKA_BOOTSTRAP_SERVERS says, because that cluster's security is not ours
to choose.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.broker import LocalBroker
from tests.brokers import free_ports, running_broker

_HERE = Path(__file__).resolve().parent

SCRAM_USER = "emlops-worker"
# Distinctive, so a leak is found by a plain substring search of logs, tickets and metrics.
SCRAM_PASSWORD = "pw-7Qx9-not-for-logs-4kZt"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker with one SCRAM user and two listeners that require it: ``sasl_bootstrap`` (SASL_PLAINTEXT)
    and ``sasl_ssl_bootstrap`` (SASL_SSL, certificate in ``tls_ca_file``)."""
    port, controller_port, sasl_port, sasl_ssl_port = free_ports(4)
    with running_broker(tmp_path_factory.mktemp("kafka-scram"), [port, controller_port], sasl_port=sasl_port,
                        sasl_ssl_port=sasl_ssl_port, scram_users={SCRAM_USER: SCRAM_PASSWORD}) as broker:
        yield broker
