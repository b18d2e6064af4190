"""The topics emlops reads and writes, declared explicitly (the local broker does not auto-create topics)."""

from __future__ import annotations

import asyncio

from dataclasses import dataclass
from typing import Iterable

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


# One key's monitors, compressed, in one message: far above what 1,000 features need.
CHECKPOINT_MAX_BYTES = 16 * 1024 * 1024
# Whose monitor state the intake checkpoints (agents/predictions.py, agents/infrastructure.py): named here so
# their state topics are declared before the agents register.
MODEL_FLEET, SOURCE_FLEET = FLEETS = ("model", "source")


def state_topic(settings: Settings, fleet: str) -> str:
    return f"{settings.app_id}-{fleet}-state"


def state_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The compacted topics of checkpointed monitor state, partitioned like the input topics."""
    return [TopicSpec(state_topic(settings, fleet), settings.partitions,
                      {"cleanup.policy": "compact", "max.message.bytes": str(CHECKPOINT_MAX_BYTES)})
            for fleet in FLEETS]


def input_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Extra input topics in other formats (configuration file [[inputs]]), created if missing."""
    return [TopicSpec(spec.topic, settings.partitions, {}) for spec in settings.inputs]


async def ensure_topics(settings: Settings, extra: Iterable[TopicSpec] = (), ready_timeout: float = 30.0) -> None:
    """Create missing topics, then wait until the broker serves metadata for all of them: a consumer that
    joins its group while a new topic is still unknown can be left out of (or stuck in) the assignment.
    Existing topics are left as they are."""
    wanted = [*topic_specs(settings), *input_topic_specs(settings), *state_topic_specs(settings), *extra]
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for spec in wanted:
            if spec.name in existing:
                continue
            try:
                await admin.create_topics([NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.config)])
            except TopicAlreadyExistsError:
                pass  # another worker won the race
        names = [spec.name for spec in wanted]
        async with asyncio.timeout(ready_timeout):
            while not all(t.get("error_code") == 0 and t.get("partitions")
                          for t in await admin.describe_topics(names)):
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
