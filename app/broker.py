"""A real single-node Apache Kafka broker for development and the integration tests.

The machines this project runs on have Java and Maven but no Docker and no internet beyond package
registries, so the broker is the stock ``kafka.Kafka`` main class on a classpath that Maven resolves
from Maven Central into a user cache, run in KRaft combined mode on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

KAFKA_VERSION = "4.1.1"
JAVA17 = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
PACKAGE_KAFKA_DIR = Path(__file__).resolve().with_name("kafka")
READY_LINE = "Kafka Server started"
MAVEN_TIMEOUT = 900.0
SASL_LISTENER = "SASL_PLAINTEXT"
TLS_LISTENER = "SASL_SSL"
SCRAM_MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
SCRAM_ITERATIONS = 4096  # Kafka's minimum


class BrokerError(RuntimeError):
    """The local broker could not be resolved, started or stopped; the message is written for a human."""


def cache_home() -> Path:
    """Jars (~40 MB) and broker data must survive checkouts and never reach git, so they live in a user cache."""
    configured = os.environ.get("EMLOPS_HOME")
    home = Path(configured).expanduser() if configured else Path.home() / ".cache" / "emlops"
    return home.resolve()


def default_data_dir() -> Path:
    return cache_home() / "broker"


def java_executable() -> str:
    """Kafka 4.1 is run on Java 17 here; a newer JDK (Temurin 25) may come first on PATH."""
    if JAVA17.is_file():
        return str(JAVA17)
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError(
            "no Java runtime found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return found


def resolve_jars(home: Path | None = None) -> Path:
    """Maven Central is the only source of the broker here, and resolving costs seconds to minutes.

    The jars are fetched once per pom: a marker holding the pom's digest is written only after Maven
    succeeded, so an interrupted or outdated copy is redone instead of trusted. A file lock keeps
    concurrent test sessions from copying into the same directory at once.
    """
    root = (home or cache_home()).resolve() / f"kafka-{KAFKA_VERSION}"
    libs = root / "libs"
    marker = root / "libs.complete"
    pom = (PACKAGE_KAFKA_DIR / "pom.xml").read_bytes()
    digest = hashlib.sha256(pom).hexdigest()
    if _read_text(marker) == digest:
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _read_text(marker) == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                f"Maven (mvn) is not on PATH; it is needed once to fetch the Kafka {KAFKA_VERSION} jars "
                "(apt-get install maven)"
            )
        java_home = Path(java_executable()).resolve().parent.parent
        marker.unlink(missing_ok=True)
        shutil.rmtree(libs, ignore_errors=True)
        (root / "pom.xml").write_bytes(pom)
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(root / "pom.xml"),
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
        ]
        try:
            result = subprocess.run(
                command, cwd=root, env={**os.environ, "JAVA_HOME": str(java_home)},
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=MAVEN_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"Maven did not finish resolving the Kafka jars within {MAVEN_TIMEOUT:.0f}s; "
                f"is Maven Central reachable?\n{_tail(_text(exc.stdout) + _text(exc.stderr))}"
            ) from exc
        if result.returncode != 0 or not any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            raise BrokerError(
                f"Maven could not resolve the Kafka {KAFKA_VERSION} jars (exit {result.returncode}); "
                f"is Maven Central reachable?\n$ {' '.join(command)}\n{_tail(result.stdout + result.stderr)}"
            )
        marker.write_text(digest)
    return libs


def free_port() -> int:
    """Tests must not collide with a developer's broker on 9092, so the OS picks an unused port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalBroker:
    """One broker per data directory; the pid file there lets another process (the CLI) find and stop it."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    home: Path | None = None
    # An extra SASL_PLAINTEXT listener with SCRAM-SHA-256 and -512, for trying authentication locally. The
    # users are written into the KRaft storage when it is first formatted (a reused data dir keeps its old
    # users). The PLAINTEXT listener on `port` stays: inter-broker traffic and the readiness check use it.
    sasl_port: int | None = None
    scram_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The same SCRAM users over TLS: a SASL_SSL listener with a self-signed certificate for 127.0.0.1, made
    # with keytool on first start (the CA file for clients is `tls_ca_file`).
    sasl_ssl_port: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if self.scram_users and self.sasl_port is None and self.sasl_ssl_port is None:
            raise ValueError("scram_users needs a sasl_port or sasl_ssl_port for a SASL listener")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL_PLAINTEXT (SCRAM) listener; only when the broker was given a ``sasl_port``."""
        if self.sasl_port is None:
            raise BrokerError("this broker has no SASL listener (no sasl_port)")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """The SASL_SSL (SCRAM over TLS) listener; only when the broker was given a ``sasl_ssl_port``."""
        if self.sasl_ssl_port is None:
            raise BrokerError("this broker has no SASL_SSL listener (no sasl_ssl_port)")
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def tls_ca_file(self) -> Path:
        """The PEM certificate clients trust for the SASL_SSL listener (KAFKA_SSL_CAFILE)."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def _keystore(self) -> Path:
        return self.data_dir / "tls" / "broker.p12"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def _console_log(self) -> Path:
        return self.data_dir / "logs" / "broker.out"

    @property
    def _properties(self) -> Path:
        return self.data_dir / "server.properties"

    def start(self, timeout: float = 90) -> str:
        """Idempotent so that `emlops broker start` and test sessions can call it without checking first.

        Readiness needs both the log line and a client round trip: the log line alone can precede the
        listener accepting metadata requests, and a client alone cannot tell a slow JVM from a dead one.
        """
        deadline = time.monotonic() + timeout
        pid = self._running_pid()
        if pid is not None:
            if _read_text(self._properties) != self._server_properties():
                raise BrokerError(
                    f"a broker (pid {pid}) already runs from {self.data_dir} with other settings "
                    f"(see {self._properties}); stop it first"
                )
            if not _port_open(self.port):
                self._wait_ready(deadline, timeout)
            return self.bootstrap
        for port in (self.port, self.controller_port, *(p for p in (self.sasl_port, self.sasl_ssl_port) if p)):
            if _port_open(port):
                raise BrokerError(
                    f"127.0.0.1:{port} is already taken by another process; choose other ports "
                    "(EMLOPS_BROKER_PORT / EMLOPS_CONTROLLER_PORT or --port / --controller-port)"
                )
        libs = resolve_jars(self.home)
        java = java_executable()
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        if self.sasl_ssl_port is not None:
            self._ensure_keystore(java)
        self._properties.write_text(self._server_properties())
        self._rotate_logs()
        self._format_storage(java, libs)
        with self._console_log.open("wb") as console:
            self._proc = subprocess.Popen(
                [java, "-Xms256m", "-Xmx512m", "-XX:+UseG1GC", *self._logging_flags(),
                 "-cp", f"{libs}/*", "kafka.Kafka", str(self._properties)],
                cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(deadline, timeout)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM lets Kafka close its logs cleanly so the next start skips log recovery; SIGKILL is the fallback.

        Returns whether a broker was running.
        """
        pid = self._running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self._proc = None
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_exit(pid, wait):
                break
        else:
            raise BrokerError(f"Kafka broker pid {pid} did not exit even after SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        self._proc = None
        return True

    def status(self) -> dict[str, Any]:
        pid = self._running_pid()
        return {
            "running": pid is not None and _port_open(self.port),
            "pid": pid,
            "bootstrap": self.bootstrap,
            "data_dir": str(self.data_dir),
            **({"sasl_bootstrap": self.sasl_bootstrap} if self.sasl_port is not None else {}),
            **({"sasl_ssl_bootstrap": self.sasl_ssl_bootstrap} if self.sasl_ssl_port is not None else {}),
        }

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _server_properties(self) -> str:
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.sasl_port is not None:
            listeners += f",{SASL_LISTENER}://127.0.0.1:{self.sasl_port}"
            protocols += f",{SASL_LISTENER}:SASL_PLAINTEXT"
        if self.sasl_ssl_port is not None:
            listeners += f",{TLS_LISTENER}://127.0.0.1:{self.sasl_ssl_port}"
            protocols += f",{TLS_LISTENER}:SASL_SSL"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": protocols,
            "log.dirs": str(self.data_dir / "data"),
            # Topics are declared explicitly by the app; a typo must fail, not create a topic.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            # One offsets partition makes the first consumer-group join fast.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        sasl_listeners = [name for name, port in ((SASL_LISTENER, self.sasl_port), (TLS_LISTENER, self.sasl_ssl_port))
                          if port is not None]
        if sasl_listeners:
            settings["sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
        for listener in sasl_listeners:
            # The server side of SCRAM needs a login module but no secret: the users' salted credentials
            # live in the cluster metadata (see _scram_arguments), never in this file.
            for mechanism in SCRAM_MECHANISMS:
                settings[f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        if self.sasl_ssl_port is not None:
            # A throw-away key for a loopback broker; its password protects nothing worth a secret store.
            prefix = f"listener.name.{TLS_LISTENER.lower()}.ssl"
            password = _read_text(self._keystore.with_suffix(".password")).strip()
            settings.update({f"{prefix}.keystore.location": str(self._keystore), f"{prefix}.keystore.type": "PKCS12",
                             f"{prefix}.keystore.password": password, f"{prefix}.key.password": password})
        header = "# Written by app/broker.py on every start; edits are overwritten.\n"
        if self.scram_users:
            # Names only; a different user set makes start() refuse to reuse a running broker.
            header += f"# SCRAM users: {','.join(sorted(self.scram_users))}\n"
        return header + "".join(f"{key}={value}\n" for key, value in settings.items())

    def _logging_flags(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile=file:{PACKAGE_KAFKA_DIR / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
        ]

    def _rotate_logs(self) -> None:
        """A previous run's "Kafka Server started" must not count as readiness of this one."""
        for log in (self.server_log, self._console_log):
            if log.exists():
                log.replace(log.with_name(log.name + ".1"))

    def _cluster_id(self) -> str:
        """--ignore-formatted still rejects a cluster id that differs from the stored one, so reuse it."""
        for line in _read_text(self.data_dir / "data" / "meta.properties").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id" and value.strip():
                return value.strip()
        while True:  # an id starting with '-' reads as an option to the storage tool (Kafka draws again too)
            cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
            if not cluster_id.startswith("-"):
                return cluster_id

    def _format_storage(self, java: str, libs: Path) -> None:
        cluster_id = self._cluster_id()
        result = subprocess.run(
            [java, *self._logging_flags(), "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
             "--standalone", "-t", cluster_id, "-c", str(self._properties), "--ignore-formatted",
             *self._scram_arguments()],
            cwd=self.data_dir, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage in {self.data_dir / 'data'} failed (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr)}"
            )

    def _ensure_keystore(self, java: str) -> None:
        """A self-signed RSA key and certificate for 127.0.0.1 (and localhost), made once per data dir."""
        if self._keystore.is_file() and self.tls_ca_file.is_file():
            return
        tls = self._keystore.parent
        tls.mkdir(parents=True, exist_ok=True)
        keytool = Path(java).with_name("keytool")
        password_file = self._keystore.with_suffix(".password")
        password_file.write_text(base64.urlsafe_b64encode(os.urandom(18)).decode())
        password_file.chmod(0o600)
        self._keystore.unlink(missing_ok=True)
        common = ["-keystore", str(self._keystore), "-storetype", "PKCS12", "-storepass:file", str(password_file)]
        for command in (
            ["-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
             "-dname", "CN=127.0.0.1", "-ext", "SAN=IP:127.0.0.1,DNS:localhost", "-keypass:file", str(password_file),
             *common],
            ["-exportcert", "-rfc", "-alias", "broker", "-file", str(self.tls_ca_file), *common],
        ):
            result = subprocess.run([str(keytool), *command, "-noprompt"], cwd=tls, stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                raise BrokerError(f"keytool could not make the broker's TLS certificate (exit {result.returncode}):\n"
                                  f"{_tail(result.stdout + result.stderr)}")

    def _scram_arguments(self) -> list[str]:
        """``--add-scram`` for every user and mechanism, as salt and salted password (PBKDF2, RFC 5802).

        Kafka accepts the salted form at format time, so the plain passwords never reach a command line
        (visible in /proc) or a file.
        """
        arguments = []
        for name, password in sorted(self.scram_users.items()):
            if not name or any(c in name for c in ",=[]\"") or not password:
                raise BrokerError(f"SCRAM user {name!r}: the name must be non-empty without , = [ ] \" "
                                  "and the password non-empty")
            for mechanism, digest in SCRAM_MECHANISMS.items():
                salt = os.urandom(16)
                salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, SCRAM_ITERATIONS)
                arguments += ["--add-scram", (
                    f"{mechanism}=[name={name},iterations={SCRAM_ITERATIONS},"
                    f"salt={base64.b64encode(salt).decode()},saltedpassword={base64.b64encode(salted).decode()}]"
                )]
        return arguments

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        while True:
            if self._running_pid() is None:
                raise BrokerError(f"the Kafka broker exited during start-up\n{self._log_tail()}")
            if READY_LINE in _read_text(self.server_log) and _answers(self.bootstrap):
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the Kafka broker was not ready within {timeout:.0f}s\n{self._log_tail()}"
                )
            time.sleep(0.25)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def _alive(self, pid: int) -> bool:
        """A pid file can outlive its JVM and the pid be reused, so only our own kafka.Kafka counts.

        Our own child is polled rather than probed: a dead, unreaped child still answers signal 0.
        """
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            if Path("/proc/self").exists():
                return False
            return _signalable(pid)
        except OSError:
            return _signalable(pid)
        return b"kafka.Kafka" in cmdline and str(self._properties).encode() in cmdline

    def _log_tail(self) -> str:
        """A failed start logs its cause early and then hundreds of shutdown lines, so quote both."""
        parts = []
        errors = _first_errors(_read_text(self.server_log))
        if errors:
            parts.append(f"--- first errors in {self.server_log} ---\n{errors}")
        for log in (self._console_log, self.server_log):
            text = _read_text(log)
            if text.strip():
                parts.append(f"--- {log} (last lines) ---\n{_tail(text, 20)}")
        return "\n".join(parts) or f"(no broker output in {self.data_dir / 'logs'})"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _describe_cluster(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return len(cluster["brokers"])


def _answers(bootstrap: str) -> bool:
    """The broker counts as up only once a real client sees it registered in the cluster metadata."""
    try:
        return asyncio.run(asyncio.wait_for(_describe_cluster(bootstrap), 10)) > 0
    except (KafkaError, OSError):
        return False


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _first_errors(log: str, limit: int = 10) -> str:
    """ERROR/FATAL records with the line after each, which holds the exception message."""
    lines = log.splitlines()
    picked: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("[") and ("] ERROR " in line or "] FATAL " in line):
            picked.append(line)
            if index + 1 < len(lines) and not lines[index + 1].startswith("["):
                picked.append("    " + lines[index + 1])
            if len(picked) >= limit:
                break
    return "\n".join(picked)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def default_broker() -> LocalBroker:
    """The broker the CLI and the demo share: default data dir, ports from the environment."""
    return LocalBroker(
        default_data_dir(),
        port=int(os.environ.get("EMLOPS_BROKER_PORT", "9092")),
        controller_port=int(os.environ.get("EMLOPS_CONTROLLER_PORT", "9093")),
    )


def main(argv: list[str]) -> int:
    """Backs `emlops broker start|stop|status`; `start` prints the bootstrap so scripts can capture it."""
    parser = argparse.ArgumentParser(
        prog="emlops broker",
        description=f"Run a local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft, 127.0.0.1).",
    )
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="broker state, logs and pid file (default: $EMLOPS_HOME/broker or ~/.cache/emlops/broker)")
    default = default_broker()
    parser.add_argument("--port", type=int, default=default.port,
                        help="client listener port (env EMLOPS_BROKER_PORT, default 9092)")
    parser.add_argument("--controller-port", type=int, default=default.controller_port,
                        help="KRaft controller port (env EMLOPS_CONTROLLER_PORT, default 9093)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait (default: 90 for start, 30 for stop)")
    args = parser.parse_args(argv)

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if args.command == "start" and external:
        print(f"KAFKA_BOOTSTRAP_SERVERS is set: using the external cluster {external}; "
              "no local broker started", file=sys.stderr)
        print(external)
        return 0

    broker = LocalBroker(args.data_dir or default_data_dir(), port=args.port, controller_port=args.controller_port)
    try:
        if args.command == "start":
            if broker.status()["pid"] is None:
                print(f"starting Kafka {KAFKA_VERSION} in {broker.data_dir} "
                      "(the first run fetches the jars with Maven)", file=sys.stderr)
            print(broker.start(timeout=args.timeout or 90))
        elif args.command == "stop":
            print("stopped" if broker.stop(timeout=args.timeout or 30) else "not running")
        else:
            print(json.dumps(broker.status()))
    except BrokerError as exc:
        print(f"emlops broker {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
