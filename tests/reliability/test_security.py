"""Security against a real broker that requires SASL/SCRAM: the worker gets in with credentials and only
with them, says clearly why when it cannot, and the password never shows up where people or tools look."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from app.broker import LocalBroker
from tests.reliability.conftest import SCRAM_PASSWORD, SCRAM_USER


async def _cluster_brokers(bootstrap: str, **auth: object) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **auth)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(admin.start(), 15)
        return len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_scram_listener_admits_the_user_with_either_mechanism(scram_broker: LocalBroker, mechanism: str) -> None:
    assert asyncio.run(_cluster_brokers(
        scram_broker.sasl_bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
        sasl_plain_username=SCRAM_USER, sasl_plain_password=SCRAM_PASSWORD,
    )) == 1


@pytest.mark.parametrize("auth", [
    pytest.param({}, id="plain-client"),
    pytest.param({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                  "sasl_plain_username": SCRAM_USER, "sasl_plain_password": "wrong"}, id="wrong-password"),
    pytest.param({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                  "sasl_plain_username": "intruder", "sasl_plain_password": SCRAM_PASSWORD}, id="unknown-user"),
    pytest.param({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                  "sasl_plain_username": SCRAM_USER, "sasl_plain_password": SCRAM_PASSWORD}, id="plain-mechanism"),
])
def test_the_scram_listener_refuses_everyone_else(scram_broker: LocalBroker, auth: dict[str, str]) -> None:
    with pytest.raises(KafkaConnectionError):
        asyncio.run(_cluster_brokers(scram_broker.sasl_bootstrap, **auth))


def test_no_secret_is_written_to_the_broker_files(scram_broker: LocalBroker) -> None:
    """The users go into the metadata as salted credentials; the password is on no command line or file."""
    for path in scram_broker.data_dir.rglob("*"):
        if path.is_file():
            assert SCRAM_PASSWORD.encode() not in path.read_bytes(), path
