"""The topics emlops reads and writes, declared explicitly (the local broker does not auto-create topics)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Inputs are keyed by model or source and detections by dedup key, so each key's state stays on one
    partition; incidents are compacted by dedup key so the topic holds the latest revision of each."""
    t, n = settings.topics, settings.partitions
    return [
        TopicSpec(t.predictions, n, {}),
        TopicSpec(t.infrastructure, n, {}),
        TopicSpec(t.detections, n, {}),
        TopicSpec(t.incidents, n, {"cleanup.policy": "compact,delete"}),
        TopicSpec(t.silences, 1, {"cleanup.policy": "compact"}),
        TopicSpec(t.dead_letter, 1, {}),
    ]


def input_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Extra input topics in other formats (configuration file [[inputs]]), created if missing."""
    return [TopicSpec(spec.topic, settings.partitions, {}) for spec in settings.inputs]


async def ensure_topics(settings: Settings) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(s.name, s.partitions, 1, topic_configs=s.config)
            for s in [*topic_specs(settings), *input_topic_specs(settings)]
            if s.name not in existing
        ]
        for topic in missing:
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass  # another worker won the race
    finally:
        await admin.close()
