"""``emlops config check FILE``: validate a configuration file with the environment and print what the worker
would understand, with where each Kafka and app value came from and secrets masked."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import Mapping

from app.config import ConfigError, apply_catalogue, build_input_adapters, load_config
from app.settings import Settings
from models.config import MonitorConfig
from models.routing import Rules, RulesError, load_rules


def describe(settings: Settings, rules: Rules, environment: Mapping[str, str]) -> str:
    """What the worker understood, for people: every value with where it came from, secrets masked."""
    file_env = load_config(settings.config_file, {}).environment if settings.config_file else {}

    def origin(var: str) -> str:
        if var in environment:
            return "  (environment)"
        return "  (file)" if var in file_env else ""

    s = settings
    lines = [f"configuration file: {s.config_file or '(none)'}", "", "kafka:"]
    lines.append(f"  bootstrap servers   {s.bootstrap_servers or 'local broker ' + s.bootstrap}"
                 f"{origin('KAFKA_BOOTSTRAP_SERVERS')}")
    lines.append(f"  security protocol   {s.security_protocol}{origin('KAFKA_SECURITY_PROTOCOL')}")
    if s.sasl_mechanism:
        lines.append(f"  sasl                {s.sasl_mechanism} as {s.sasl_username}, password "
                     f"{'set' if s.sasl_password else 'NOT SET'}{origin('KAFKA_SASL_PASSWORD')}")
    if s.ssl_cafile:
        lines.append(f"  ssl ca file         {s.ssl_cafile}{origin('KAFKA_SSL_CAFILE')}")
    lines += ["", f"app id {s.app_id}{origin('EMLOPS_APP_ID')}, {s.partitions} partitions{origin('EMLOPS_PARTITIONS')}, "
              f"web {s.web_host}:{s.web_port}, data {s.data_dir}", "", "topics:"]
    for name in s.topics.__dataclass_fields__:
        lines.append(f"  {name:<16} {getattr(s.topics, name)}")
    lines += ["", "extra inputs:" if s.inputs else "extra inputs: none"]
    for spec in s.inputs:
        options = ", ".join(f"{k}={v!r}" for k, v in spec.options.items()) or "default options"
        lines.append(f"  {spec.topic:<24} {spec.format:<14} -> {spec.target} agent ({options})")
    lines += ["", f"routing rules: {s.rules_file or 'shipped default'}; {len(rules.rules)} rules, "
              f"resolve after {rules.resolve_after_s:g}s, group interval {rules.group_interval_s:g}s, "
              f"default tier {rules.default_tier}"]
    lines += ["", "models:" if s.catalogue else "models: none in the catalogue"]
    for m in s.catalogue:
        tier = rules.tiers.get(m.name, rules.default_tier)
        parts = [f"tier {tier}", f"owner {m.owner or '-'}"]
        if m.services:
            parts.append("services " + ", ".join(m.services))
        if m.pipelines:
            parts.append("pipelines " + ", ".join(m.pipelines))
        if m.features:
            parts.append(f"{len(m.features)} named features")
        if m.monitor:
            parts.append("monitor " + ", ".join(f"{k}={v}" for k, v in m.monitor.items()))
        lines.append(f"  {m.name:<24} " + "; ".join(parts))
    changed = [f"{f.name}={getattr(s.monitor, f.name)}" for f in fields(MonitorConfig)
               if getattr(s.monitor, f.name) != getattr(MonitorConfig(), f.name)]
    lines += ["", "monitor defaults: " + (", ".join(changed) if changed else "built-in")]
    lines += ["", "sinks:" if s.sinks else "sinks: none (tickets go to the incidents topic only)"]
    for sink in s.sinks:
        route = sink.route
        conditions = [f"{k} {', '.join(sorted(v))}" for k, v in (("areas", route.areas), ("priorities", route.priorities),
                                                                  ("statuses", route.statuses)) if v]
        conditions += [f"{k}={v}" for k, v in route.labels.items()]
        key = f", routing key {'set' if sink.routing_key else 'missing'}" if sink.type == "pagerduty" else ""
        lines.append(f"  {sink.name:<16} {sink.type:<12} {sink.url}{key}")
        lines.append(f"  {'':<16} route: {'; '.join(conditions) or 'every ticket'}; retries up to "
                     f"{sink.backoff.max_attempts} attempts / {sink.backoff.give_up_after_s:g}s, "
                     f"then {s.topics.dead_letter}")
    return "\n".join(lines)


def effective_rules(settings: Settings) -> Rules:
    """The routing rules the worker runs with: rules file, timing overrides, then the catalogue."""
    overrides = {k: v for k, v in (("resolve_after_s", settings.resolve_after_s),
                                   ("group_interval_s", settings.group_interval_s)) if v is not None}
    return apply_catalogue(load_rules(settings.rules_file).with_overrides(**overrides), settings.catalogue)


def check_inputs(settings: Settings) -> None:
    """Extra inputs must not be emlops' own topics, and each must make an adapter."""
    own = {getattr(settings.topics, name): name for name in settings.topics.__dataclass_fields__}
    for spec in settings.inputs:
        if spec.topic in own:
            raise ConfigError(f"input topic {spec.topic!r} is emlops' own {own[spec.topic]} topic")
    build_input_adapters(settings)


def main(argv: list[str]) -> int:
    """``emlops config check FILE``."""
    parser = argparse.ArgumentParser(
        prog="emlops config",
        description="Work with the configuration file (TOML) that EMLOPS_CONFIG names; see the README's "
        "'Configuration file' section.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="validate a configuration file and print what it understood",
        description="Validate FILE together with the current environment (which wins over the file), the routing "
        "rules it names and its input formats; print the effective settings with where each came from. "
        "Exits 1 with the reason when something is wrong.",
    )
    check.add_argument("file", help="the TOML configuration file")
    args = parser.parse_args(argv)
    environment = {k: v for k, v in os.environ.items() if k != "EMLOPS_CONFIG"}
    try:
        settings = Settings.from_env({**environment, "EMLOPS_CONFIG": args.file})
        rules = effective_rules(settings)
        check_inputs(settings)
    except (ConfigError, RulesError, ValueError, OSError) as exc:
        print(f"emlops config check: {exc}", file=sys.stderr)
        return 1
    print(describe(settings, rules, environment))
    print("\nconfiguration OK")
    return 0
