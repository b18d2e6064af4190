"""Security against a real broker that requires SASL/SCRAM (over plain TCP and over TLS): the worker gets in
with credentials and only with them, says clearly why when it cannot, and the password never shows up where
people or tools look.

"Fails clearly" means: within WORKER_FAILS_WITHIN_S the worker process exits with 77 (EX_NOPERM), without a
traceback, and its last line names the broker, how the worker tried to authenticate and what to set.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from app.broker import LocalBroker
from app.kafka_access import EX_CONFIG, EX_NOPERM, PREFIX, config_problems, probe
from app.settings import Settings
from app.topics import ensure_topics
from app.worker_process import WorkerProcess
from tests.brokers import worker_env
from tests.integration.kafka_io import produce, read_until, tickets
from tests.reliability.conftest import SCRAM_PASSWORD, SCRAM_USER

WORKER_FAILS_WITHIN_S = 60.0
WRONG_PASSWORD = "wrong-pw-3Jd8-also-secret"
MODEL = "sec-drift-model"
BAD_INPUT = [b"not json at all", b'{"type": "prediction", "model": "sec-drift-model"}']


def _worker_env(bootstrap: str, work: Path, **kafka: str) -> dict[str, str]:
    """Every KAFKA_* variable is set, so nothing leaks in from the environment the tests run in."""
    plain = {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_MECHANISM": "", "KAFKA_SASL_USERNAME": "",
             "KAFKA_SASL_PASSWORD": "", "KAFKA_SSL_CAFILE": ""}
    return worker_env(bootstrap, "sec", work / "data", **{**plain, **kafka, "EMLOPS_TICK_INTERVAL_S": "1"})


def _scram(mechanism: str = "SCRAM-SHA-256", password: str = SCRAM_PASSWORD, user: str = SCRAM_USER,
           protocol: str = "SASL_PLAINTEXT") -> dict[str, str]:
    return {"KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": password}


def _listener(broker: LocalBroker, protocol: str) -> tuple[str, dict[str, str]]:
    """The bootstrap of the broker's listener for ``protocol`` and the variables to reach it."""
    if protocol == "SASL_SSL":
        return broker.sasl_ssl_bootstrap, {**_scram(protocol=protocol, mechanism="SCRAM-SHA-512"),
                                           "KAFKA_SSL_CAFILE": str(broker.tls_ca_file)}
    return broker.sasl_bootstrap, _scram()


def _prediction(i: int, x: float, rng: random.Random) -> dict[str, Any]:
    return {
        "type": "prediction", "request_id": f"{MODEL}-{i}", "model": MODEL, "version": "1",
        "timestamp": time.time(), "features": {"x": round(x, 4), "y": round(rng.gauss(5, 1), 4)},
        "prediction": 1, "confidence": 0.9, "latency_ms": 10.0,
    }


def _is_drift(ticket: dict[str, Any]) -> bool:
    return ticket["labels"].get("model") == MODEL and "feature_drift" in ticket["kinds"]


def _raw(records: list) -> bytes:
    """Everything a consumer of a topic sees: keys, values and headers."""
    parts = []
    for r in records:
        parts += [r.key or b"", r.value or b""]
        parts += [name.encode() + b"=" + (value or b"") for name, value in r.headers]
    return b"\n".join(parts)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return None if exc.code == 404 else f"HTTP {exc.code}"


@dataclass
class SecuredRun:
    settings: Settings
    ticket: dict[str, Any]
    incidents: bytes
    dead_letters: list
    metrics: str | None
    log: str


PROTOCOLS = ["SASL_PLAINTEXT", "SASL_SSL"]


@pytest.fixture(scope="module")
def secured_runs(
    scram_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, SecuredRun]]:
    """One worker per SASL listener, credentials from the environment, started side by side and each fed a
    drift scenario and some garbage through an authenticated producer; what they wrote is kept for the tests."""
    envs, workers = {}, {}
    for protocol in PROTOCOLS:
        bootstrap, kafka = _listener(scram_broker, protocol)
        work = tmp_path_factory.mktemp(f"worker-{protocol.lower()}")
        envs[protocol] = _worker_env(bootstrap, work, **kafka)
        workers[protocol] = WorkerProcess(envs[protocol], work / "worker.log")
    settings = {protocol: Settings.from_env(env) for protocol, env in envs.items()}
    rng = random.Random(11)
    events = [(MODEL, _prediction(i, rng.gauss(0, 1) + (3 if i >= 1000 else 0), rng)) for i in range(1600)]

    async def scenario(s: Settings) -> tuple[list, list]:
        await produce(s, s.topics.predictions, [(MODEL, raw) for raw in BAD_INPUT] + events)
        incidents = await read_until(s, s.topics.incidents, lambda rs: any(map(_is_drift, tickets(rs))))
        dead = await read_until(s, s.topics.dead_letter, lambda rs: len(rs) >= len(BAD_INPUT), timeout=30)
        return incidents, dead

    async def all_scenarios() -> list[tuple[list, list]]:
        await asyncio.gather(*(ensure_topics(s) for s in settings.values()))
        for worker in workers.values():
            worker.start()
        return await asyncio.gather(*(scenario(s) for s in settings.values()))

    runs = {}
    try:
        results = asyncio.run(all_scenarios())
        for (protocol, worker), (incidents, dead) in zip(workers.items(), results):
            if worker.exit_code is not None:
                pytest.fail(f"the {protocol} worker died (exit {worker.exit_code}):\n{worker.log_tail()}",
                            pytrace=False)
            metrics = _get(f"http://127.0.0.1:{envs[protocol]['EMLOPS_WEB_PORT']}/metrics")
            runs[protocol] = SecuredRun(settings[protocol], next(filter(_is_drift, tickets(incidents))),
                                        _raw(incidents), dead, metrics, "")
    finally:
        for worker in workers.values():
            worker.stop()
    for protocol, run in runs.items():
        run.log = workers[protocol].log_path.read_text(errors="replace")
    yield runs


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_worker_with_scram_credentials_turns_drift_into_a_ticket(secured_runs: dict[str, SecuredRun],
                                                                 protocol: str) -> None:
    secured_run = secured_runs[protocol]
    assert secured_run.settings.security_protocol == protocol
    ticket = secured_run.ticket
    assert ticket["labels"]["feature"].split(",") == ["x"]
    assert ticket["status"] == "triggered" and "Data Operations" in ticket["areas"]
    reasons = sorted(dict(r.headers)["emlops.reason"].decode() for r in secured_run.dead_letters)
    assert len(reasons) == len(BAD_INPUT) and any("not valid JSON" in reason for reason in reasons)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_password_appears_in_no_log_ticket_dead_letter_metric_or_repr(secured_runs: dict[str, SecuredRun],
                                                                         protocol: str) -> None:
    secured_run = secured_runs[protocol]
    s = secured_run.settings
    assert s.sasl_password == SCRAM_PASSWORD  # the worker really ran with it
    surfaces = {
        "worker log": secured_run.log,
        "incidents topic": secured_run.incidents.decode(errors="replace"),
        "dead-letter topic": _raw(secured_run.dead_letters).decode(errors="replace"),
        "repr(Settings)": repr(s),
        "str(Settings)": str(s),
    }
    if secured_run.metrics is not None:
        surfaces["/metrics"] = secured_run.metrics
    for name, text in surfaces.items():
        assert SCRAM_PASSWORD not in text, f"the SASL password leaked into the {name}"
    assert "Ready" in secured_run.log or "OK ^" in secured_run.log  # the log is the real one, not empty


@pytest.mark.parametrize("kafka, names", [
    pytest.param({}, ["Kafka authentication required", "no credentials", "SCRAM-SHA-256", "KAFKA_SASL_PASSWORD"],
                 id="no-credentials"),
    pytest.param(_scram(password=WRONG_PASSWORD),
                 ["Kafka authentication failed", f"SCRAM-SHA-256 as user '{SCRAM_USER}'", "rejected"],
                 id="wrong-password"),
])
def test_worker_without_valid_credentials_fails_clearly(
    scram_broker: LocalBroker, tmp_path: Path, kafka: dict[str, str], names: list[str]
) -> None:
    env = _worker_env(scram_broker.sasl_bootstrap, tmp_path, **kafka)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    with worker:
        deadline = time.monotonic() + WORKER_FAILS_WITHIN_S
        while worker.exit_code is None and time.monotonic() < deadline:
            time.sleep(0.2)
        code = worker.exit_code
    log = worker.log_path.read_text(errors="replace")
    assert code == EX_NOPERM, f"expected exit {EX_NOPERM} within {WORKER_FAILS_WITHIN_S}s, got {code}:\n{log[-3000:]}"
    last = log.strip().splitlines()[-1]
    assert last.startswith(PREFIX) and scram_broker.sasl_bootstrap in last, log[-3000:]
    for name in names:
        assert name in last, last
    assert "Traceback" not in log
    assert SCRAM_PASSWORD not in log and WRONG_PASSWORD not in log


def test_contradicting_security_settings_stop_the_worker_before_it_connects(tmp_path: Path) -> None:
    """A mechanism without a SASL protocol would make Faust authenticate but plain clients not."""
    env = _worker_env("127.0.0.1:1", tmp_path, KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
                      KAFKA_SASL_USERNAME=SCRAM_USER, KAFKA_SASL_PASSWORD=SCRAM_PASSWORD)
    assert config_problems(Settings.from_env(env)) == [
        "KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD are set but "
        "KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL; set SASL_PLAINTEXT or SASL_SSL"
    ]
    assert config_problems(Settings.from_env({**env, **_scram(password="")})) == [
        "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_PASSWORD"
    ]
    assert config_problems(Settings.from_env({**env, **_scram(mechanism="GSSAPI")})) == [
        "KAFKA_SASL_MECHANISM='GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"
    ]


def test_credentials_from_the_configuration_file_get_in_and_wrong_ones_are_named(
    scram_broker: LocalBroker, tmp_path: Path
) -> None:
    """The [kafka] section of EMLOPS_CONFIG is the other place credentials come from; the probe is what
    the worker runs before it starts."""
    def settings(password: str, mechanism: str) -> Settings:
        config = tmp_path / f"emlops-{mechanism}-{len(password)}.toml"
        config.write_text(
            f'[kafka]\nbootstrap_servers = "{scram_broker.sasl_bootstrap}"\nsecurity_protocol = "SASL_PLAINTEXT"\n'
            f'sasl_mechanism = "{mechanism}"\nsasl_username = "{SCRAM_USER}"\nsasl_password = "{password}"\n'
        )
        return Settings.from_env({"EMLOPS_CONFIG": str(config)})

    good = settings(SCRAM_PASSWORD, "SCRAM-SHA-512")
    assert good.sasl_password == SCRAM_PASSWORD and SCRAM_PASSWORD not in repr(good)
    assert asyncio.run(probe(good)) is None
    refusal = asyncio.run(probe(settings(WRONG_PASSWORD, "SCRAM-SHA-256")))
    assert refusal is not None and refusal.startswith("Kafka authentication failed")
    assert WRONG_PASSWORD not in refusal and SCRAM_PASSWORD not in refusal


def test_tls_problems_are_named_before_the_worker_connects(scram_broker: LocalBroker) -> None:
    """Over SASL_SSL the certificate is checked first: an untrusted one, or TLS spoken to a plain listener,
    is reported as a TLS problem, never as a wrong password."""
    bootstrap, kafka = _listener(scram_broker, "SASL_SSL")
    base = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, **kafka}
    assert asyncio.run(probe(Settings.from_env(base))) is None
    untrusted = asyncio.run(probe(Settings.from_env({**base, "KAFKA_SSL_CAFILE": ""})))  # system CAs only
    assert untrusted is not None and "certificate was not trusted" in untrusted and "KAFKA_SSL_CAFILE" in untrusted
    not_tls = asyncio.run(probe(Settings.from_env({**base, "KAFKA_BOOTSTRAP_SERVERS": scram_broker.sasl_bootstrap})))
    assert not_tls is not None and not_tls.startswith("Kafka TLS failed")
    wrong = asyncio.run(probe(Settings.from_env({**base, "KAFKA_SASL_PASSWORD": WRONG_PASSWORD})))
    assert wrong is not None and wrong.startswith("Kafka authentication failed") and WRONG_PASSWORD not in wrong


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
