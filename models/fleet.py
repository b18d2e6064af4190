"""All monitors of one worker (or one backtest), keyed by model version or by source, bounded in number."""

from __future__ import annotations

from typing import Mapping

from models.config import MonitorConfig
from models.label_join import LabelJoin
from models.model_monitor import ModelMonitor
from models.registry import Registry
from models.schema import Detection, InfraEvent, LabelEvent, PredictionEvent
from models.service_monitor import ServiceMonitor

ModelKey = tuple[str, str, "str | None"]


class ModelFleet:
    """Routes prediction and label events to their model version's monitor, joining labels on the way."""

    def __init__(self, config: MonitorConfig | None = None, per_model: Mapping[str, MonitorConfig] | None = None) -> None:
        self.config = c = config or MonitorConfig()
        self.per_model = m = dict(per_model or {})  # models with their own settings (config file overrides)
        self.monitors: Registry[ModelKey, ModelMonitor] = Registry(
            lambda key: ModelMonitor(key[0], key[1], key[2], m.get(key[0], c)), c.max_keys
        )
        self.joins: Registry[str, LabelJoin] = Registry(
            lambda model: LabelJoin(m.get(model, c).pending_max, m.get(model, c).pending_ttl_s), c.max_keys
        )

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


class ServiceFleet:
    """One anomaly/freshness monitor per infrastructure source."""

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = c = config or MonitorConfig()
        self.monitors: Registry[tuple[str, str], ServiceMonitor] = Registry(
            lambda key: ServiceMonitor(key[0], key[1], c), c.max_keys
        )

    def observe(self, event: InfraEvent) -> list[Detection]:
        return self.monitors.get((event.source, event.source_kind)).observe(event)
