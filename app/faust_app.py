"""The Faust application and its topics and tables; agents register themselves on it (see app.worker)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

import faust
from aiokafka.errors import KafkaError

from app import faust_fixes
from app.config import apply_catalogue
from app.kafka_access import check_before_start, config_problems
from app.settings import Settings
from app.topics import TopicSpec, ensure_topics, topic_specs
from models.routing import load_rules

log = logging.getLogger(__name__)
settings = Settings.from_env()
# Loaded at import so a bad rules file stops the worker at start with the reason, not on the first detection.
routing_rules = apply_catalogue(load_rules(settings.rules_file).with_overrides(
    **{k: v for k, v in (("resolve_after_s", settings.resolve_after_s),
                         ("group_interval_s", settings.group_interval_s)) if v is not None}
), settings.catalogue)


def _credentials(s: Settings) -> faust.types.auth.CredentialsT | None:
    if config_problems(s):
        return None  # the worker exits at start naming the problems (see below)
    if s.security_protocol.startswith("SASL_"):
        context = s.kafka_client_options().get("ssl_context")
        return faust.SASLCredentials(
            username=s.sasl_username, password=s.sasl_password, mechanism=s.sasl_mechanism, ssl_context=context
        )
    if s.security_protocol == "SSL":
        return faust.SSLCredentials(s.kafka_client_options()["ssl_context"])
    return None


faust_fixes.apply()

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.bootstrap.replace(',', ';kafka://')}",
    broker_credentials=_credentials(settings),
    store="memory://",
    datadir=settings.data_dir,
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="raw",
    web_host=settings.web_host,
    web_port=settings.web_port,
    consumer_auto_offset_reset="earliest",
    # A worker that dies is noticed after this long and its partitions move (Faust's default is 60 s).
    broker_session_timeout=settings.session_timeout_s,
)
# Before the worker connects: security settings that contradict each other, or a broker that refuses these
# credentials, stop it with one clear line and exit code 78 or 77, not a retry loop or a bootstrap traceback.
app.on_worker_init.connect(lambda sender, **_: check_before_start(settings))


def _topic(spec: TopicSpec) -> faust.TopicT:
    # internal=True makes Faust declare the topic with these partitions before subscribing.
    return app.topic(
        spec.name, partitions=spec.partitions, config=spec.config, internal=True, key_type=bytes, value_type=bytes
    )


# The input topics are read by the intake's own consumer (agents/intake.py); Faust has these.
_specs = {spec.name: spec for spec in topic_specs(settings)}
detections_topic, incidents_topic, silences_topic, dead_letter_topic = (
    _topic(_specs[name]) for name in (settings.topics.detections, settings.topics.incidents,
                                      settings.topics.silences, settings.topics.dead_letter)
)


_JSON = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
# Incident state and revision history by dedup key, changelogged, so a restarted worker continues its open
# incidents. Keys are the raw dedup-key bytes of the detections topic, so Faust's table routing (web views
# with several workers) hashes a key to the same partition the router owns.
incidents_table = app.Table(
    "incidents",
    partitions=settings.partitions,
    key_type=bytes,  # Faust picks the changelog's key serializer from key_type, not from the schema
    schema=faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json"),
)
# Global: every worker's router needs every silence, and the open upstream incidents (by source) that may
# explain a model's tickets wherever that model's partition lives.
silences_table = app.GlobalTable("silences", partitions=1, schema=_JSON)
causes_table = app.GlobalTable("causes", partitions=settings.partitions, schema=_JSON)
# Operators' area corrections (and silent confirmations), the learned router's training data and history.
area_feedback_table = app.GlobalTable("area-feedback", partitions=settings.partitions, schema=_JSON)


def _create_topics_before_joining(sender: object, **_: object) -> None:
    """Create every topic, changelogs included, before the worker joins its group. Faust creates its
    changelogs itself, but a consumer whose metadata lags that creation can hang in the partition
    assignment (seen on a loaded machine: 'Ignoring missing topic', then no assignment ever)."""
    changelogs = [
        TopicSpec(table.changelog_topic.get_topic_name(), table.partitions or settings.partitions,
                  {"cleanup.policy": "compact", **table.extra_topic_configs})
        for table in app.tables.values()
    ]
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="topics") as pool:
        try:
            pool.submit(asyncio.run, ensure_topics(settings, changelogs, ready_timeout=15)).result()
        except (KafkaError, TimeoutError) as exc:
            # Faust also runs this for 'worker --help'; an unreachable broker is the worker's own problem
            # to report (and retry) once it really starts.
            log.warning("could not prepare the topics before joining: %s", exc)


app.on_worker_init.connect(_create_topics_before_joining)
