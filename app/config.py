"""The configuration file (TOML): read, validated and turned into what :class:`app.settings.Settings` needs.

One file, named by ``EMLOPS_CONFIG`` (``emlops config check FILE``, in ``app.config_check``, validates one),
with these sections:

* ``[kafka]``: ``bootstrap_servers``, ``security_protocol``, ``sasl_mechanism``, ``sasl_username``,
  ``sasl_password``, ``ssl_cafile``; each is the environment variable ``KAFKA_<NAME>``.
* ``[emlops]``: ``app_id``, ``topic_prefix``, ``partitions``, ``web_host``, ``web_port``, ``data_dir``, ``rules``,
  ``resolve_after_s``, ``group_interval_s``, ``tick_interval_s``, ``checkpoint_interval_s``,
  ``checkpoint_max_events``, ``session_timeout_s``, ``api_token``, ``api_reads``, ``public_url``; each is ``EMLOPS_<NAME>``.
* ``[[inputs]]``: extra input topics and their formats (``topic``, ``format``, ``options``).
* ``[monitor]``: monitor defaults (:class:`models.config.MonitorConfig` fields), ``EMLOPS_MONITOR_<FIELD>``.
* ``[models.<name>]``: the model catalogue: ``tier``, ``owner``, ``services``, ``pipelines``, ``features`` and
  ``[models.<name>.monitor]`` overrides for that model.
* ``[[sinks]]``: where tickets are delivered besides the incidents topic (``name``, ``type``, ``url``, ...,
  ``[sinks.route]``); ``EMLOPS_SINK_<NAME>_URL`` and ``EMLOPS_SINK_<NAME>_ROUTING_KEY`` override them.

The environment always wins over the file. Paths in the file are relative to the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from models.adapters import FORMATS, Adapter, SourceLink, build_adapter, check_options, target_of
from models.adapters.delivery import Backoff, Route
from models.config import MonitorConfig
from models.schema import Area

if TYPE_CHECKING:
    from app.settings import Settings
    from models.routing import Rules

KAFKA_KEYS = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password",
              "ssl_cafile")
EMLOPS_KEYS = ("app_id", "topic_prefix", "partitions", "web_host", "web_port", "data_dir", "rules",
               "resolve_after_s", "group_interval_s", "tick_interval_s", "checkpoint_interval_s",
               "checkpoint_max_events", "session_timeout_s", "api_token", "api_reads", "public_url")
PATH_KEYS = ("rules", "data_dir", "ssl_cafile")
SECTIONS = ("kafka", "emlops", "inputs", "monitor", "models", "sinks")
SINK_TYPES = ("alertmanager", "pagerduty")
SOURCE_KINDS = {"services": "service", "pipelines": "pipeline"}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class InputSpec:
    """An extra input topic: its name, the format of its messages and that format's options."""

    topic: str
    format: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return target_of(self.format)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of the catalogue: how critical it is, who owns it and what it depends on."""

    name: str
    tier: int | None = None
    owner: str | None = None
    services: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    monitor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Where and how to deliver tickets: an Alertmanager-style webhook or a PagerDuty Events API v2 endpoint."""

    name: str
    type: str
    url: str
    route: Route = field(default_factory=Route)
    routing_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    backoff: Backoff = field(default_factory=Backoff)
    timeout_s: float = 10.0
    queue_size: int = 10_000
    external_url: str = ""


@dataclass(frozen=True)
class FileConfig:
    """Everything the file says, the environment's overrides for the structured parts already applied."""

    path: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[InputSpec, ...] = ()
    catalogue: tuple[ModelEntry, ...] = ()
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    model_monitors: Mapping[str, MonitorConfig] = field(default_factory=dict)
    sinks: tuple[SinkSpec, ...] = ()


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> FileConfig:
    """Read and validate the file at ``path`` (``None``: no file, only environment overrides)."""
    env = env or {}
    if path is None or str(path) == "":
        return parse_config({}, None, env)
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, file, env)


def parse_config(data: Mapping[str, Any], file: Path | None, env: Mapping[str, str]) -> FileConfig:
    where = str(file) if file else "configuration"
    base = file.resolve().parent if file else Path.cwd()
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    environment = {
        **_environment(_table(data, "kafka", where), "kafka", KAFKA_KEYS, "KAFKA_", base, where),
        **_environment(_table(data, "emlops", where), "emlops", EMLOPS_KEYS, "EMLOPS_", base, where),
    }
    monitor = _monitor(_table(data, "monitor", where), env, f"{where}: [monitor]")
    catalogue = tuple(_model(name, entry, f"{where}: [models.{name}]")
                      for name, entry in _table(data, "models", where).items())
    model_monitors = {m.name: _apply(monitor, m.monitor, f"{where}: [models.{m.name}.monitor]")
                      for m in catalogue if m.monitor}
    inputs = tuple(_input(raw, f"{where}: [[inputs]] #{i}") for i, raw in enumerate(_array(data, "inputs", where), 1))
    topics = [spec.topic for spec in inputs]
    duplicated = sorted({t for t in topics if topics.count(t) > 1})
    if duplicated:
        raise ConfigError(f"{where}: [[inputs]] lists topic(s) {duplicated} more than once")
    sinks = tuple(_sink(raw, env, f"{where}: [[sinks]] #{i}") for i, raw in enumerate(_array(data, "sinks", where), 1))
    names = [s.name for s in sinks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: [[sinks]] names must be unique, got {names}")
    return FileConfig(
        path=str(file.resolve()) if file else None, environment=environment, inputs=inputs, catalogue=catalogue,
        monitor=monitor, model_monitors=model_monitors, sinks=sinks,
    )


# --- sections ------------------------------------------------------------------------------------------------


def _table(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def _array(data: Mapping[str, Any], name: str, where: str) -> list[Mapping[str, Any]]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: '{name}' must be an array of tables ([[{name}]])")
    return value


def _environment(table: Mapping[str, Any], section: str, keys: tuple[str, ...], prefix: str, base: Path,
                 where: str) -> dict[str, str]:
    out = {}
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(f"{where}: [{section}] has unknown key {key!r}; known: {', '.join(keys)}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: [{section}] {key} must be a string or a number")
        text = str(value)
        if key in PATH_KEYS and text and not Path(text).is_absolute():
            text = str(base / text)
        out[prefix + key.upper()] = text
    return out


def _apply(config: MonitorConfig, overrides: Mapping[str, Any], where: str) -> MonitorConfig:
    try:
        return config.with_overrides(overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _monitor(table: Mapping[str, Any], env: Mapping[str, str], where: str) -> MonitorConfig:
    config = _apply(MonitorConfig(), table, where)
    names = {f.name for f in fields(MonitorConfig)}
    from_env: dict[str, Any] = {}
    for name in names:
        value = env.get(f"EMLOPS_MONITOR_{name.upper()}")
        if value:
            default = getattr(config, name)
            from_env[name] = tuple(v.strip() for v in value.split(",")) if isinstance(default, tuple) else value
    return _apply(config, from_env, "environment EMLOPS_MONITOR_*") if from_env else config


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _model(name: str, entry: Any, where: str) -> ModelEntry:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(entry) - {"tier", "owner", "services", "pipelines", "features", "monitor"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}")
    tier = entry.get("tier")
    if tier is not None and (isinstance(tier, bool) or not isinstance(tier, int) or tier < 1):
        raise ConfigError(f"{where}: tier must be an integer from 1 (most critical)")
    owner = entry.get("owner")
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise ConfigError(f"{where}: owner must be a non-empty string")
    monitor = entry.get("monitor", {})
    if not isinstance(monitor, dict):
        raise ConfigError(f"{where}: monitor must be a table of monitor settings")
    return ModelEntry(
        name=name, tier=tier, owner=owner,
        services=_strings(entry.get("services", []), f"{where}: services"),
        pipelines=_strings(entry.get("pipelines", []), f"{where}: pipelines"),
        features=_strings(entry.get("features", []), f"{where}: features"),
        monitor=dict(monitor),
    )


def _input(raw: Mapping[str, Any], where: str) -> InputSpec:
    unknown = sorted(set(raw) - {"topic", "format", "options"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}")
    topic, format = raw.get("topic"), raw.get("format")
    if not isinstance(topic, str) or not topic:
        raise ConfigError(f"{where}: 'topic' must be a topic name")
    if format not in FORMATS:
        raise ConfigError(f"{where} ({topic}): format must be one of {', '.join(FORMATS)}, got {format!r}")
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where} ({topic}): options must be a table")
    try:
        check_options(format, options)
    except ValueError as exc:
        raise ConfigError(f"{where} ({topic}): {exc}") from None
    return InputSpec(topic, format, dict(options))


def _env_name(sink: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", sink.upper())


def _sink(raw: Mapping[str, Any], env: Mapping[str, str], where: str) -> SinkSpec:
    allowed = {"name", "type", "url", "routing_key", "headers", "route", "timeout_s", "queue_size", "external_url",
               "backoff"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {', '.join(sorted(allowed))}")
    name, kind = raw.get("name"), raw.get("type")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"{where}: 'name' must be letters, digits, '_', '.' or '-'")
    where = f"{where} ({name})"
    if kind not in SINK_TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(SINK_TYPES)}, got {kind!r}")
    prefix = f"EMLOPS_SINK_{_env_name(name)}_"
    url = env.get(prefix + "URL") or raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: 'url' must be an http:// or https:// URL (or set {prefix}URL)")
    routing_key = env.get(prefix + "ROUTING_KEY") or raw.get("routing_key")
    if kind == "pagerduty" and (not isinstance(routing_key, str) or not routing_key):
        raise ConfigError(f"{where}: a pagerduty sink needs 'routing_key' (better: {prefix}ROUTING_KEY)")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{where}: headers must be a table of strings")
    route_raw = raw.get("route", {})
    if not isinstance(route_raw, dict):
        raise ConfigError(f"{where}: route must be a table")
    unknown = sorted(set(route_raw) - {"areas", "priorities", "statuses", "labels"})
    if unknown:
        raise ConfigError(f"{where}: route has unknown key(s) {unknown}")
    labels = route_raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ConfigError(f"{where}: route.labels must be a table of strings")
    try:
        areas = frozenset(Area(a).value for a in _strings(route_raw.get("areas", []), f"{where}: route.areas"))
        route = Route(
            areas=areas,
            priorities=frozenset(_strings(route_raw.get("priorities", []), f"{where}: route.priorities")),
            statuses=frozenset(_strings(route_raw.get("statuses", []), f"{where}: route.statuses")),
            labels=dict(labels),
        )
        backoff_raw = raw.get("backoff", {})
        if not isinstance(backoff_raw, dict):
            raise ConfigError(f"{where}: backoff must be a table")
        unknown = sorted(set(backoff_raw) - {f.name for f in fields(Backoff)})
        if unknown:
            raise ConfigError(f"{where}: backoff has unknown key(s) {unknown}")
        backoff = Backoff(**backoff_raw)
        timeout_s = float(raw.get("timeout_s", 10.0))
        queue_size = int(raw.get("queue_size", 10_000))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None
    if timeout_s <= 0 or queue_size < 1:
        raise ConfigError(f"{where}: timeout_s must be > 0 and queue_size >= 1")
    external_url = raw.get("external_url", "")
    if not isinstance(external_url, str):
        raise ConfigError(f"{where}: external_url must be a string")
    return SinkSpec(name=name, type=kind, url=url, route=route, routing_key=routing_key, headers=dict(headers),
                    backoff=backoff, timeout_s=timeout_s, queue_size=queue_size, external_url=external_url)


# --- what the catalogue means to the rest of the worker -----------------------------------------------------


def source_links(catalogue: tuple[ModelEntry, ...]) -> dict[str, SourceLink]:
    """Services and pipelines by name, with the model they feed (None when they feed several)."""
    links: dict[str, SourceLink] = {}
    for entry in catalogue:
        for group, kind in SOURCE_KINDS.items():
            for source in getattr(entry, group):
                known = links.get(source)
                if known is None:
                    links[source] = SourceLink(kind, entry.name)
                elif known.model != entry.name:
                    links[source] = SourceLink(known.kind, None)
    return links


def feature_names(catalogue: tuple[ModelEntry, ...]) -> dict[str, tuple[str, ...]]:
    return {m.name: m.features for m in catalogue if m.features}


def owners(catalogue: tuple[ModelEntry, ...]) -> dict[str, str]:
    """Owner team by model, and by each service and pipeline that feeds only owned models."""
    out = {m.name: m.owner for m in catalogue if m.owner}
    for source, link in source_links(catalogue).items():
        if link.model in out:
            out.setdefault(source, out[link.model])
    return out


def apply_catalogue(rules: Rules, catalogue: tuple[ModelEntry, ...]) -> Rules:
    """The routing rules with the catalogue's tiers and topology (services and pipelines a model depends on)
    on top of the rules file's own ``[catalogue]``."""
    from dataclasses import replace

    from models.routing import RulesError

    tiers_count = min(len(row) for row in rules.priority.values())
    tiers = dict(rules.tiers)
    depends_on = dict(rules.depends_on)
    for entry in catalogue:
        if entry.tier is not None:
            if entry.tier > tiers_count:
                raise RulesError(f"model {entry.name!r}: tier {entry.tier} but the priority matrix has "
                                 f"{tiers_count} tiers")
            tiers[entry.name] = entry.tier
        upstream = (*depends_on.get(entry.name, ()), *entry.services, *entry.pipelines)
        if upstream:
            depends_on[entry.name] = tuple(dict.fromkeys(upstream))
    return replace(rules, tiers=tiers, depends_on=depends_on)


def build_input_adapters(settings: Settings) -> dict[str, Adapter]:
    """One adapter per extra input topic, with what the catalogue knows (feature names, source topology)."""
    names, links = feature_names(settings.catalogue), source_links(settings.catalogue)
    return {spec.topic: build_adapter(spec.format, spec.options, feature_names=names, links=links)
            for spec in settings.inputs}
