"""One frozen settings object, read from the environment in this one place and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from app.config import InputSpec, ModelEntry, SinkSpec, load_config
from models.config import MonitorConfig

LOCAL_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class Topics:
    predictions: str = "emlops.predictions"
    infrastructure: str = "emlops.infrastructure"
    detections: str = "emlops.detections"
    incidents: str = "emlops.incidents"
    silences: str = "emlops.silences"
    dead_letter: str = "emlops.dlq"


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str | None = None  # None: the embedded local broker
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    app_id: str = "emlops"
    partitions: int = 4
    topics: Topics = field(default_factory=Topics)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    api_token: str | None = field(default=None, repr=False)  # operator actions need it; never logged
    api_reads: str = "loopback"  # who may use the read-only views: loopback | open | token
    public_url: str | None = None  # where people reach the web views; tickets link there
    data_dir: str = ".emlops-data"
    rules_file: str | None = None
    resolve_after_s: float | None = None
    group_interval_s: float | None = None
    tick_interval_s: float = 5.0
    checkpoint_interval_s: float = 5.0
    checkpoint_max_events: int = 50_000  # a checkpoint comes sooner after this many events (a crash replays them)
    session_timeout_s: float = 10.0
    batch_size: int = 500
    batch_within_s: float = 0.05
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    # From the configuration file (EMLOPS_CONFIG); see app/config.py.
    config_file: str | None = None
    inputs: tuple[InputSpec, ...] = ()  # extra input topics in other formats
    catalogue: tuple[ModelEntry, ...] = ()  # models: tier, owner, services and pipelines, features
    model_monitors: Mapping[str, MonitorConfig] = field(default_factory=dict)  # per-model monitor overrides
    sinks: tuple[SinkSpec, ...] = ()  # ticket deliveries besides the incidents topic

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_servers or LOCAL_BOOTSTRAP

    def extra_inputs(self, target: str) -> list[str]:
        """The extra input topics (configuration file [[inputs]]) whose events go to ``target``'s monitors."""
        return [spec.topic for spec in self.inputs if spec.target == target]

    @property
    def intake_group(self) -> str:
        """The consumer group of the input topics (agents/intake.py); Faust's own group is ``app_id``."""
        return f"{self.app_id}-intake"

    @property
    def web_url(self) -> str:
        return (self.public_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    @property
    def uses_local_broker(self) -> bool:
        return self.bootstrap_servers is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        file = load_config(env.get("EMLOPS_CONFIG"), env)
        env = {**file.environment, **env}  # the environment wins over the file

        def opt(name: str) -> str | None:
            return env.get(name) or None

        def number(name: str, default: float | None) -> float | None:
            value = opt(name)
            return default if value is None else float(value)

        prefix = env.get("EMLOPS_TOPIC_PREFIX", "emlops.")
        topics = Topics(**{f: prefix + getattr(Topics(), f).removeprefix("emlops.") for f in Topics.__dataclass_fields__})
        return cls(
            bootstrap_servers=opt("KAFKA_BOOTSTRAP_SERVERS"),
            security_protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
            sasl_mechanism=opt("KAFKA_SASL_MECHANISM"),
            sasl_username=opt("KAFKA_SASL_USERNAME"),
            sasl_password=opt("KAFKA_SASL_PASSWORD"),
            ssl_cafile=opt("KAFKA_SSL_CAFILE"),
            app_id=env.get("EMLOPS_APP_ID", "emlops"),
            partitions=int(env.get("EMLOPS_PARTITIONS", 4)),
            topics=topics,
            web_host=env.get("EMLOPS_WEB_HOST", "127.0.0.1"),
            web_port=int(env.get("EMLOPS_WEB_PORT", 6066)),
            api_token=opt("EMLOPS_API_TOKEN"),
            api_reads=env.get("EMLOPS_API_READS", "loopback"),
            public_url=opt("EMLOPS_PUBLIC_URL"),
            data_dir=env.get("EMLOPS_DATA_DIR", ".emlops-data"),
            rules_file=opt("EMLOPS_RULES"),
            resolve_after_s=number("EMLOPS_RESOLVE_AFTER_S", None),
            group_interval_s=number("EMLOPS_GROUP_INTERVAL_S", None),
            tick_interval_s=float(env.get("EMLOPS_TICK_INTERVAL_S", 5.0)),
            checkpoint_interval_s=float(env.get("EMLOPS_CHECKPOINT_INTERVAL_S", 5.0)),
            checkpoint_max_events=int(env.get("EMLOPS_CHECKPOINT_MAX_EVENTS", 50_000)),
            session_timeout_s=float(env.get("EMLOPS_SESSION_TIMEOUT_S", 10.0)),
            monitor=file.monitor,
            config_file=file.path,
            inputs=file.inputs,
            catalogue=file.catalogue,
            model_monitors=file.model_monitors,
            sinks=file.sinks,
        )

    def kafka_client_options(self) -> dict[str, object]:
        """Options for plain aiokafka clients (demo, tests, consumers of the incidents topic)."""
        options: dict[str, object] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return options
