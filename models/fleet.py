"""All monitors of one worker (or one backtest), keyed by model version or by source, bounded in number.

Checkpoints are per Kafka key, because a partition's keys move between workers together: a model's
join and every monitor of its versions and segments (``ModelFleet.snapshot_key(model)``), or every
monitor of one source (``ServiceFleet.snapshot_key(source)``). ``keys()`` lists what can be saved;
``restore_key`` puts a saved key back; ``snapshot()`` / ``restore()`` do the whole fleet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

from models import snapshot
from models.config import MonitorConfig
from models.label_join import LabelJoin
from models.model_monitor import ModelMonitor
from models.registry import Registry
from models.schema import Detection, InfraEvent, LabelEvent, PredictionEvent
from models.service_monitor import ServiceMonitor

ModelKey = tuple[str, str, "str | None"]


@dataclass
class ModelKeyState:
    """Everything a ModelFleet knows about one model (one Kafka key of the predictions topic)."""

    model: str
    join: LabelJoin | None
    monitors: dict[tuple[str, str | None], ModelMonitor] = field(default_factory=dict)


@dataclass
class ServiceKeyState:
    """Everything a ServiceFleet knows about one source (one Kafka key of the infrastructure topic)."""

    source: str
    monitors: dict[str, ServiceMonitor] = field(default_factory=dict)  # by source kind


@dataclass
class FleetState:
    config: MonitorConfig
    keys: dict[str, bytes]
    per_model: dict[str, MonitorConfig] = field(default_factory=dict)


class ModelFleet:
    """Routes prediction and label events to their model version's monitor, joining labels on the way."""

    def __init__(self, config: MonitorConfig | None = None, per_model: Mapping[str, MonitorConfig] | None = None) -> None:
        self.config = c = config or MonitorConfig()
        self.per_model = m = dict(per_model or {})  # models with their own settings (config file overrides)
        self.monitors: Registry[ModelKey, ModelMonitor] = Registry(
            self._new_monitor, c.max_keys, on_evict=self._unindex
        )
        # Each model's monitor keys (versions, segments): a checkpoint takes one model at a time, and
        # scanning every monitor for each would cost O(models²) with thousands of models.
        self._by_model: dict[str, dict[ModelKey, None]] = {}  # insertion-ordered sets
        self.joins: Registry[str, LabelJoin] = Registry(
            lambda model: LabelJoin(m.get(model, c).pending_max, m.get(model, c).pending_ttl_s), c.max_keys
        )

    def _new_monitor(self, key: ModelKey) -> ModelMonitor:
        self._by_model.setdefault(key[0], {})[key] = None
        return ModelMonitor(key[0], key[1], key[2], self.per_model.get(key[0], self.config))

    def _unindex(self, key: ModelKey) -> None:
        keys = self._by_model.get(key[0])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._by_model[key[0]]

    def observe(self, event: PredictionEvent | LabelEvent) -> list[Detection]:
        if isinstance(event, PredictionEvent):
            self.joins.get(event.model).remember(event)
            return self.monitors.get((event.model, event.version, event.segment)).observe_prediction(event)
        pending = self.joins.get(event.model).match(event.request_id)
        if pending is None:
            return []
        monitor = self.monitors.get((event.model, pending.version, pending.segment))
        return monitor.observe_outcome(pending.prediction, event, pending.confidence)

    def pending_labels(self) -> int:
        return sum(len(join) for _, join in self.joins.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    # --- checkpoints ---------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """The models this fleet holds state for."""
        return list(dict.fromkeys([*self.joins, *self._by_model]))

    def snapshot_key(self, model: str) -> bytes:
        state = ModelKeyState(model, self.joins.peek(model),
                              {(k[1], k[2]): self.monitors.peek(k) for k in self._by_model.get(model, ())})
        return snapshot.dumps(state)

    def restore_key(self, model: str, blob: bytes) -> None:
        state = snapshot.loads(blob, ModelKeyState)
        if state.model != model:
            raise snapshot.SnapshotError(f"snapshot is of model {state.model!r}, not {model!r}")
        if state.join is not None:
            self.joins.put(model, state.join)
        for (version, segment), monitor in state.monitors.items():
            key = (model, version, segment)
            self._by_model.setdefault(model, {})[key] = None
            self.monitors.put(key, monitor)

    def forget_key(self, model: str) -> None:
        """Drop a model's state (its partition moved to another worker, which restores it from a checkpoint)."""
        self.joins.discard(model)
        for key in self._by_model.pop(model, ()):
            self.monitors.discard(key)

    def snapshot(self) -> bytes:
        return snapshot.dumps(FleetState(self.config, {k: self.snapshot_key(k) for k in self.keys()}, self.per_model))

    @classmethod
    def restore(cls, blob: bytes) -> ModelFleet:
        state = snapshot.loads(blob, FleetState)
        fleet = cls(state.config, state.per_model)
        for key, key_blob in state.keys.items():
            fleet.restore_key(key, key_blob)
        return fleet


class ServiceFleet:
    """One anomaly/freshness monitor per infrastructure source."""

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = c = config or MonitorConfig()
        self.monitors: Registry[tuple[str, str], ServiceMonitor] = Registry(
            lambda key: ServiceMonitor(key[0], key[1], c), c.max_keys
        )

    def observe(self, event: InfraEvent) -> list[Detection]:
        return self.monitors.get((event.source, event.source_kind)).observe(event)

    def keys(self) -> list[str]:
        """The sources this fleet holds state for."""
        return list(dict.fromkeys(key[0] for key in self.monitors))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def snapshot_key(self, source: str) -> bytes:
        return snapshot.dumps(ServiceKeyState(source, {k[1]: m for k, m in self.monitors.items() if k[0] == source}))

    def restore_key(self, source: str, blob: bytes) -> None:
        state = snapshot.loads(blob, ServiceKeyState)
        if state.source != source:
            raise snapshot.SnapshotError(f"snapshot is of source {state.source!r}, not {source!r}")
        for kind, monitor in state.monitors.items():
            self.monitors.put((source, kind), monitor)

    def forget_key(self, source: str) -> None:
        for key in [k for k in self.monitors if k[0] == source]:
            self.monitors.discard(key)

    def snapshot(self) -> bytes:
        return snapshot.dumps(FleetState(self.config, {k: self.snapshot_key(k) for k in self.keys()}))

    @classmethod
    def restore(cls, blob: bytes) -> ServiceFleet:
        state = snapshot.loads(blob, FleetState)
        fleet = cls(state.config)
        for key, key_blob in state.keys.items():
            fleet.restore_key(key, key_blob)
        return fleet
