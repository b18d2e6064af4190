"""Whether the worker may talk to Kafka, checked once before it starts.

Left alone, a Faust worker with a wrong password logs one line from deep inside aiokafka and dies with an
"Unable to bootstrap" traceback, and a worker without credentials at a broker that requires them only sees
"connection closed", which reads like an outage. Here both become one clear line and a distinct exit code:

* the security settings must fit together (:func:`config_problems`), or the worker exits with 78
  (``EX_CONFIG``) before it connects anywhere;
* the broker must accept one connection authenticated exactly as the worker's clients will be
  (:func:`probe`), or the worker exits with 77 (``EX_NOPERM``) naming the cause: credentials rejected,
  SASL mechanism not offered, SASL required but not configured, or TLS refused.

A broker that cannot be reached at all is not an access problem: the worker starts and Faust copes with it.
No message written here contains a password; name and mechanism identify the credentials instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import ssl
import sys
from typing import Any

from aiokafka import errors
from aiokafka.conn import create_conn
from aiokafka.protocol.admin import SaslHandShakeRequest
from aiokafka.protocol.metadata import MetadataRequest

from app.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
EX_NOPERM = 77  # the broker refused the worker
EX_CONFIG = 78  # the settings contradict each other
PROBE_TIMEOUT_S = 10.0
PREFIX = "emlops: cannot start the worker: "
_AUTH_KEYS = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password", "ssl_context")
_WHERE = "(environment, or the [kafka] section of the EMLOPS_CONFIG file)"


def config_problems(s: Settings) -> list[str]:
    """What in the Kafka security settings cannot work, in words naming the variables; [] when they fit."""
    protocol = s.security_protocol
    if protocol not in PROTOCOLS:
        return [f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {', '.join(PROTOCOLS)}"]
    problems = []
    sasl_values = (("KAFKA_SASL_MECHANISM", s.sasl_mechanism), ("KAFKA_SASL_USERNAME", s.sasl_username),
                   ("KAFKA_SASL_PASSWORD", s.sasl_password))
    if protocol.startswith("SASL_"):
        if s.sasl_mechanism and s.sasl_mechanism not in MECHANISMS:
            problems.append(f"KAFKA_SASL_MECHANISM={s.sasl_mechanism!r} is not one of {', '.join(MECHANISMS)}")
        missing = [name for name, value in sasl_values if not value]
        if missing:
            problems.append(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
    else:
        stray = [name for name, value in sasl_values if value]
        if stray:
            # Faust would then authenticate while plain clients (topics, demo) would not: refuse both.
            problems.append(f"{', '.join(stray)} {'is' if len(stray) == 1 else 'are'} set but "
                            f"KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL; set SASL_PLAINTEXT or SASL_SSL")
    if protocol in ("SSL", "SASL_SSL") and s.ssl_cafile and not os.path.isfile(s.ssl_cafile):
        problems.append(f"KAFKA_SSL_CAFILE={s.ssl_cafile} is not a file")
    return problems


def identity(s: Settings) -> str:
    """How the worker presents itself to the broker, for messages: never the password."""
    if s.security_protocol.startswith("SASL_"):
        return f"{s.security_protocol}, {s.sasl_mechanism} as user {s.sasl_username!r}"
    return f"{s.security_protocol}, no credentials"


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().removeprefix("kafka://").rpartition(":")
        if host and port.isdigit():
            servers.append((host.strip("[]"), int(port)))
    return servers


async def _offered_mechanisms(host: str, port: int, ssl_context: Any, timeout: float) -> list[str] | None:
    """The SASL mechanisms a listener offers, or None when it does not speak SASL (or said nothing)."""
    try:
        conn = await asyncio.wait_for(create_conn(
            host, port, security_protocol="SSL" if ssl_context else "PLAINTEXT", ssl_context=ssl_context,
            request_timeout_ms=int(timeout * 1000)), timeout)
        try:
            response = await asyncio.wait_for(conn.send(SaslHandShakeRequest("EMLOPS-PROBE")), timeout)
        finally:
            conn.close()
    except (errors.KafkaError, OSError, asyncio.TimeoutError):
        return None
    if response.error_code == errors.UnsupportedSaslMechanismError.errno:
        return list(response.enabled_mechanisms)
    return None


async def probe(s: Settings, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Connect to the bootstrap servers as the worker will; None if one let us in (or none answered at all),
    else why the broker refused, in one sentence with a hint."""
    options = s.kafka_client_options()
    auth = {key: value for key, value in options.items() if key in _AUTH_KEYS}
    ssl_context = auth.get("ssl_context")
    who = identity(s)
    for host, port in _servers(s.bootstrap):
        where = f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout * 1000), **auth), timeout)
        except errors.SaslAuthenticationFailed:
            return (f"Kafka authentication failed at {where} ({who}): the broker rejected the username or "
                    f"password; check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD {_WHERE}")
        except errors.UnsupportedSaslMechanismError:
            offered = await _offered_mechanisms(host, port, ssl_context, timeout)
            return (f"Kafka authentication failed at {where} ({who}): the broker does not offer "
                    f"{s.sasl_mechanism}" + (f"; it offers {', '.join(offered)}" if offered else "")
                    + f"; set KAFKA_SASL_MECHANISM {_WHERE}")
        except errors.IllegalSaslStateError:
            return (f"Kafka authentication failed at {where} ({who}): this listener does not use SASL; "
                    f"check KAFKA_SECURITY_PROTOCOL and the bootstrap port {_WHERE}")
        except ssl.SSLCertVerificationError as exc:
            return (f"Kafka TLS failed at {where} ({who}): the broker's certificate was not trusted "
                    f"({exc.verify_message}); set KAFKA_SSL_CAFILE to the CA that signed it {_WHERE}")
        except ssl.SSLError as exc:
            return (f"Kafka TLS failed at {where} ({who}): {exc.reason or exc}; does this listener use TLS? "
                    f"check KAFKA_SECURITY_PROTOCOL {_WHERE}")
        except errors.KafkaConnectionError as exc:
            if "closed" not in str(exc):
                continue
            return await _closed(s, host, port, ssl_context, timeout, who)
        except ConnectionResetError:
            if ssl_context is None:
                continue
            return (f"Kafka TLS failed at {where} ({who}): the broker reset the connection during the TLS "
                    f"handshake; does this listener use TLS? check KAFKA_SECURITY_PROTOCOL {_WHERE}")
        except (errors.KafkaError, OSError, asyncio.TimeoutError):
            continue  # not reachable: try the next server
        try:
            await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
        except errors.KafkaConnectionError:
            return await _closed(s, host, port, ssl_context, timeout, who)
        except (errors.KafkaError, OSError, asyncio.TimeoutError):
            continue
        finally:
            conn.close()
        return None
    return None


async def _closed(s: Settings, host: str, port: int, ssl_context: Any, timeout: float, who: str) -> str:
    """The broker hung up on an unauthenticated request: find out whether it wanted SASL."""
    where = f"{host}:{port}"
    if not s.security_protocol.startswith("SASL_"):
        offered = await _offered_mechanisms(host, port, ssl_context, timeout)
        if offered:
            return (f"Kafka authentication required at {where} ({who}): the broker requires SASL "
                    f"({', '.join(offered)}) and the worker has no credentials; set KAFKA_SECURITY_PROTOCOL="
                    f"SASL_PLAINTEXT or SASL_SSL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
                    f"KAFKA_SASL_PASSWORD {_WHERE}")
    return (f"Kafka refused the worker at {where} ({who}): the broker closed the connection before answering; "
            f"it probably requires authentication (SASL) or TLS; check KAFKA_SECURITY_PROTOCOL {_WHERE}")


def check_before_start(s: Settings, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Exit the process with one line on stderr unless the settings fit and the broker lets the worker in.

    Runs before the worker's event loop exists, so the probe gets a loop of its own in a thread.
    """
    problems = config_problems(s)
    if problems:
        _refuse(EX_CONFIG, "the Kafka security settings do not fit together: " + "; ".join(problems))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kafka-access") as pool:
        refusal = pool.submit(asyncio.run, probe(s, timeout)).result()
    if refusal:
        _refuse(EX_NOPERM, refusal)


def _refuse(code: int, message: str) -> None:
    print(PREFIX + message, file=sys.stderr, flush=True)
    raise SystemExit(code)
