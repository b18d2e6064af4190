"""The configuration file: every section read and validated, the environment winning over it, errors that
name the place, and ``emlops config check`` printing what it understood."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.config import ConfigError, apply_catalogue, load_config, owners, source_links
from app.settings import Settings
from models.adapters import SourceLink
from models.routing import RulesError, load_rules

FULL = """
[kafka]
bootstrap_servers = "b1:9092,b2:9092"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "emlops"
ssl_cafile = "certs/ca.pem"

[emlops]
app_id = "emlops-prod"
topic_prefix = "ml."
partitions = 8
web_port = 7070
resolve_after_s = 900

[[inputs]]
topic = "kserve-payload-logs"
format = "kserve"
options = { pair_ttl_s = 30, max_pending = 5000 }

[[inputs]]
topic = "seldon-logs"
format = "seldon"

[[inputs]]
topic = "telegraf"
format = "telegraf"
options = { timestamp_units = "1ms", source_tags = ["service", "pipeline"] }

[[inputs]]
topic = "otel-metrics"
format = "otlp"

[monitor]
drift_min_effect = 1.0
hst_window = 500

[models.fraud-detector]
tier = 1
owner = "risk-ml"
services = ["fraud-api"]
pipelines = ["fraud-features"]
features = ["amount", "merchant", "country"]
monitor = { drift_min_effect = 1.5 }

[models.churn-model]
tier = 3
owner = "growth-ml"
services = ["fraud-api"]

[[sinks]]
name = "oncall-webhook"
type = "alertmanager"
url = "http://alerts.internal:9095/hook"
route = { areas = ["Technical Operations", "Data Operations"] }

[[sinks]]
name = "pagerduty"
type = "pagerduty"
url = "https://events.pagerduty.com/v2/enqueue"
routing_key = "from-the-file"
route = { priorities = ["P1", "P2"], labels = { model = "fraud-detector" } }
backoff = { initial_s = 0.5, max_s = 30, max_attempts = 8, give_up_after_s = 300 }
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "emlops.toml"
    path.write_text(FULL)
    return path


def test_every_section_is_understood(config_file: Path) -> None:
    s = Settings.from_env({"EMLOPS_CONFIG": str(config_file)})
    assert s.config_file == str(config_file.resolve())
    assert (s.bootstrap_servers, s.security_protocol, s.sasl_mechanism, s.sasl_username) == (
        "b1:9092,b2:9092", "SASL_SSL", "SCRAM-SHA-512", "emlops")
    assert s.ssl_cafile == str(config_file.parent / "certs/ca.pem")  # relative to the file
    assert (s.app_id, s.partitions, s.web_port, s.resolve_after_s) == ("emlops-prod", 8, 7070, 900.0)
    assert s.topics.predictions == "ml.predictions" and s.topics.incidents == "ml.incidents"
    assert [(i.topic, i.format, i.target) for i in s.inputs] == [
        ("kserve-payload-logs", "kserve", "predictions"), ("seldon-logs", "seldon", "predictions"),
        ("telegraf", "telegraf", "infrastructure"), ("otel-metrics", "otlp", "infrastructure")]
    assert s.inputs[0].options == {"pair_ttl_s": 30, "max_pending": 5000}
    assert (s.monitor.drift_min_effect, s.monitor.hst_window) == (1.0, 500)
    fraud = s.model_monitors["fraud-detector"]
    assert fraud.drift_min_effect == 1.5 and fraud.hst_window == 500  # per-model on top of the defaults
    assert "churn-model" not in s.model_monitors
    assert [(m.name, m.tier, m.owner) for m in s.catalogue] == [("fraud-detector", 1, "risk-ml"),
                                                                ("churn-model", 3, "growth-ml")]
    hook, pager = s.sinks
    assert (hook.type, hook.route.areas) == ("alertmanager", frozenset({"Technical Operations", "Data Operations"}))
    assert pager.routing_key == "from-the-file" and pager.backoff.max_attempts == 8
    assert pager.route.matches({"priority": "P1", "labels": {"model": "fraud-detector"}, "areas": []})
    assert not pager.route.matches({"priority": "P3", "labels": {"model": "fraud-detector"}, "areas": []})
    assert "from-the-file" not in repr(s)  # secrets stay out of logs


def test_the_environment_wins_over_the_file(config_file: Path) -> None:
    s = Settings.from_env({
        "EMLOPS_CONFIG": str(config_file), "KAFKA_BOOTSTRAP_SERVERS": "override:9092", "EMLOPS_PARTITIONS": "2",
        "EMLOPS_TOPIC_PREFIX": "it.", "EMLOPS_MONITOR_HST_WINDOW": "100",
        "EMLOPS_MONITOR_FRESHNESS_METRICS": "lag_seconds, age_seconds",
        "EMLOPS_SINK_PAGERDUTY_ROUTING_KEY": "from-the-environment",
        "EMLOPS_SINK_ONCALL_WEBHOOK_URL": "http://127.0.0.1:1/hook",
    })
    assert (s.bootstrap_servers, s.partitions, s.topics.dead_letter) == ("override:9092", 2, "it.dlq")
    assert s.monitor.hst_window == 100 and s.monitor.drift_min_effect == 1.0
    assert s.monitor.freshness_metrics == ("lag_seconds", "age_seconds")
    assert s.model_monitors["fraud-detector"].hst_window == 100
    assert s.sinks[1].routing_key == "from-the-environment"
    assert s.sinks[0].url == "http://127.0.0.1:1/hook"


def test_no_file_means_the_built_in_defaults() -> None:
    s = Settings.from_env({})
    assert s.config_file is None and s.inputs == () and s.sinks == () and s.catalogue == ()


def test_catalogue_topology_links_sources_to_models_and_tiers_reach_the_rules(config_file: Path) -> None:
    s = Settings.from_env({"EMLOPS_CONFIG": str(config_file)})
    assert source_links(s.catalogue) == {
        "fraud-api": SourceLink("service", None),  # feeds two models: no single model to name
        "fraud-features": SourceLink("pipeline", "fraud-detector"),
    }
    assert owners(s.catalogue) == {"fraud-detector": "risk-ml", "churn-model": "growth-ml",
                                   "fraud-features": "risk-ml"}
    rules = apply_catalogue(load_rules(), s.catalogue)
    assert rules.tiers["fraud-detector"] == 1 and rules.tiers["churn-model"] == 3
    assert set(rules.depends_on["fraud-detector"]) == {"fraud-api", "fraud-features"}


def test_a_tier_beyond_the_priority_matrix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[models.m]\ntier = 7\n")
    with pytest.raises(RulesError, match="model 'm': tier 7 but the priority matrix has 3 tiers"):
        apply_catalogue(load_rules(), load_config(path).catalogue)


@pytest.mark.parametrize("text,reason", [
    ("[kafka\n", "not valid TOML"),
    ("[database]\nurl = 'x'\n", "unknown section(s) ['database']"),
    ("[kafka]\nbootstrap = 'x'\n", "[kafka] has unknown key 'bootstrap'"),
    ("[emlops]\npartitions = [1]\n", "partitions must be a string or a number"),
    ("[[inputs]]\ntopic = 'a'\nformat = 'avro'\n", "format must be one of"),
    ("[[inputs]]\ntopic = 'a'\nformat = 'kserve'\noptions = { ttl = 3 }\n", "has no option 'ttl'"),
    ("[[inputs]]\ntopic = 'a'\nformat = 'otlp'\n[[inputs]]\ntopic = 'a'\nformat = 'otlp'\n", "more than once"),
    ("[monitor]\ndrift_delta = 2\n", "[monitor]: drift_delta must be in (0, 1)"),
    ("[monitor]\nwindow = 2\n", "unknown monitor setting(s): window"),
    ("[models.m]\ntier = 0\n", "[models.m]: tier must be an integer"),
    ("[models.m]\nteam = 'x'\n", "[models.m]: unknown key(s) ['team']"),
    ("[models.m.monitor]\nhst_trees = 0\n", "[models.m.monitor]: hst_trees must be >= 1"),
    ("[[sinks]]\nname = 'p'\ntype = 'pagerduty'\nurl = 'https://e'\n", "needs 'routing_key'"),
    ("[[sinks]]\nname = 'w'\ntype = 'slack'\nurl = 'https://e'\n", "type must be one of"),
    ("[[sinks]]\nname = 'w'\ntype = 'alertmanager'\nurl = 'ftp://e'\n", "'url' must be an http"),
    ("[[sinks]]\nname = 'w'\ntype = 'alertmanager'\nurl = 'http://e'\nroute = { areas = ['Finance'] }\n",
     "'Finance' is not a valid Area"),
    ("[[sinks]]\nname = 'w'\ntype = 'alertmanager'\nurl = 'http://e'\nroute = { priorities = ['P9'] }\n",
     "unknown priorities ['P9']"),
    ("[[sinks]]\nname = 'w'\ntype = 'alertmanager'\nurl = 'http://e'\nbackoff = { initial_s = 0 }\n",
     "0 < initial_s <= max_s"),
    ("[[sinks]]\nname = 'w'\ntype = 'alertmanager'\nurl = 'http://e'\n"
     "[[sinks]]\nname = 'w'\ntype = 'alertmanager'\nurl = 'http://f'\n", "names must be unique"),
])
def test_mistakes_are_refused_with_the_place_and_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert reason in str(info.value) and str(path) in str(info.value)


def test_a_missing_file_is_an_error_not_an_empty_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        Settings.from_env({"EMLOPS_CONFIG": str(tmp_path / "nope.toml")})


def test_config_check_prints_what_it_understood(config_file: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["config", "check", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "b1:9092,b2:9092  (file)" in out
    assert "SCRAM-SHA-512 as emlops, password set  (environment)" in out
    assert "s3cret" not in out and "from-the-file" not in out
    assert "kserve-payload-logs" in out and "-> predictions agent" in out
    assert "otel-metrics" in out and "-> infrastructure agent" in out
    assert "fraud-detector" in out and "tier 1" in out and "owner risk-ml" in out
    assert "monitor drift_min_effect=1.5" in out
    assert "pagerduty" in out and "priorities P1, P2" in out and "then ml.dlq" in out


def test_config_check_fails_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[models.m]\ntier = 9\n")
    assert main(["config", "check", str(path)]) == 1
    assert "tier 9 but the priority matrix has 3 tiers" in capsys.readouterr().err


def test_the_docker_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parents[2] / "docker" / "emlops.toml"
    assert main(["config", "check", str(example)]) == 0


def test_every_setting_read_from_the_environment_can_be_set_in_the_file() -> None:
    """A new EMLOPS_*/KAFKA_* variable in app/settings.py needs its key in app/config.py (and the README)."""
    import re

    from app.config import EMLOPS_KEYS, KAFKA_KEYS

    source = (Path(__file__).resolve().parents[2] / "app" / "settings.py").read_text()
    read = set(re.findall(r'"((?:EMLOPS|KAFKA)_[A-Z0-9_]+)"', source)) - {"EMLOPS_CONFIG"}
    known = {f"KAFKA_{k.upper()}" for k in KAFKA_KEYS} | {f"EMLOPS_{k.upper()}" for k in EMLOPS_KEYS}
    assert read <= known, f"not settable in the configuration file: {sorted(read - known)}"
