"""Demo traffic: a few models and the services they depend on, with one incident of each kind injected.

Pure generation (no Kafka here): the demo sends what this yields, and tests can read it directly. Seeded,
so every run injects the same incidents at the same points.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

PREDICTIONS = "predictions"
INFRASTRUCTURE = "infrastructure"


@dataclass(frozen=True)
class Injected:
    """An incident the demo injects, and the experience areas its ticket is expected to carry."""

    name: str
    entity: str
    kind: str
    areas: tuple[str, ...]


INCIDENTS = (
    Injected("feature drift", "churn-model", "feature_drift", ("Data Operations",)),
    Injected("accuracy decay", "fraud-detector", "performance_drift", ("Business", "User")),
    Injected("latency spike", "recommender", "latency_spike", ("Technical Operations",)),
    Injected("confidence drop", "support-assistant", "confidence_drop", ("User",)),
    Injected("resource anomaly", "fraud-api", "infra_anomaly", ("Technical Operations",)),
    Injected("stale pipeline", "feature-pipeline", "pipeline_stale", ("Data Operations",)),
)


class Traffic:
    """Yields ``(topic, key, event)`` for ``steps`` rounds; each round is one prediction per model plus
    infrastructure readings. Incidents start at ``onset`` (a fraction of the run) and last to the end."""

    def __init__(self, steps: int = 3000, onset: float = 0.5, seed: int = 7,
                 clock: Callable[[], float] = time.time) -> None:
        if steps < 100 or not 0 < onset < 1:
            raise ValueError("steps must be >= 100 and onset in (0, 1)")
        self.steps = steps
        self.onset = onset
        self.seed = seed
        self.clock = clock

    def __iter__(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        rng = random.Random(self.seed)
        start = int(self.steps * self.onset)
        pending_labels: list[tuple[int, dict[str, Any]]] = []
        for i in range(self.steps):
            now = self.clock()
            bad = i >= start
            yield from self._churn(rng, i, now, bad)
            fraud, label = self._fraud(rng, i, now, bad)
            yield fraud
            # Labels arrive 20-80 rounds later, out of order.
            pending_labels.append((i + rng.randint(20, 80), label))
            due = [lab for at, lab in pending_labels if at <= i]
            pending_labels = [(at, lab) for at, lab in pending_labels if at > i]
            for lab in due:
                lab["timestamp"] = now
                yield PREDICTIONS, "fraud-detector", lab
            yield self._recommender(rng, i, now, bad)
            yield self._assistant(rng, i, now, bad)
            yield self._api_metric(rng, i, now, bad)
            if i % 10 == 0:
                yield self._pipeline(rng, i, now, bad)

    @staticmethod
    def _prediction(model: str, version: str, i: int, now: float, features: dict[str, Any],
                    prediction: Any, confidence: float, latency: float) -> tuple[str, str, dict[str, Any]]:
        return PREDICTIONS, model, {
            "type": "prediction", "request_id": f"{model}-{i}", "model": model, "version": version,
            "timestamp": now, "features": features, "prediction": prediction,
            "confidence": round(min(max(confidence, 0.0), 1.0), 4), "latency_ms": round(max(latency, 0.1), 2),
        }

    def _churn(self, rng: random.Random, i: int, now: float, bad: bool) -> Iterator[tuple[str, str, dict[str, Any]]]:
        spend = rng.gauss(95 if bad else 60, 12)  # a pricing change upstream moves monthly_spend
        features = {"tenure_months": rng.randint(1, 72), "monthly_spend": round(spend, 2),
                    "support_calls": rng.randint(0, 5), "plan": rng.choice(["basic", "plus", "pro"])}
        p = min(max(0.2 + 0.004 * spend - 0.003 * features["tenure_months"], 0.0), 1.0)
        yield self._prediction("churn-model", "7", i, now, features, round(p, 4), 0.8 + rng.random() * 0.15,
                               rng.gauss(18, 3))

    def _fraud(self, rng: random.Random, i: int, now: float, bad: bool
               ) -> tuple[tuple[str, str, dict[str, Any]], dict[str, Any]]:
        amount = rng.lognormvariate(4, 1)
        fraud = int(rng.random() < 0.1)
        error_rate = 0.35 if bad else 0.05  # fraudsters adapted: the model is wrong far more often
        prediction = fraud if rng.random() > error_rate else 1 - fraud
        features = {"amount": round(amount, 2), "merchant_risk": round(rng.random(), 3),
                    "hour": rng.randint(0, 23), "n_tx_24h": rng.randint(0, 30)}
        event = self._prediction("fraud-detector", "3", i, now, features, prediction, rng.uniform(0.7, 0.99),
                                 rng.gauss(25, 4))
        label = {"type": "label", "request_id": f"fraud-detector-{i}", "model": "fraud-detector", "label": fraud}
        return event, label

    def _recommender(self, rng: random.Random, i: int, now: float, bad: bool) -> tuple[str, str, dict[str, Any]]:
        latency = rng.gauss(240, 30) if bad else rng.gauss(40, 6)  # a cache node failed
        features = {"session_length": rng.randint(1, 40), "items_viewed": rng.randint(0, 60),
                    "device_mobile": rng.random() < 0.6}
        return self._prediction("recommender", "12", i, now, features, rng.randint(0, 499),
                                rng.uniform(0.5, 0.9), latency)

    def _assistant(self, rng: random.Random, i: int, now: float, bad: bool) -> tuple[str, str, dict[str, Any]]:
        confidence = rng.gauss(0.55 if bad else 0.86, 0.05)  # users ask about a new product it never saw
        features = {"prompt_tokens": rng.randint(5, 400), "language_en": rng.random() < 0.8}
        return self._prediction("support-assistant", "2", i, now, features,
                                rng.choice(["billing", "shipping", "returns", "other"]), confidence, rng.gauss(300, 40))

    def _api_metric(self, rng: random.Random, i: int, now: float, bad: bool) -> tuple[str, str, dict[str, Any]]:
        metric, mean, std, unit = _API_METRICS[i % len(_API_METRICS)]
        if bad and metric == "cpu_utilisation":
            mean, std = 97.0, 1.5  # a runaway batch job on the fraud API's hosts
        return INFRASTRUCTURE, "fraud-api", {
            "type": "infra", "source": "fraud-api", "source_kind": "service", "metric": metric,
            "value": round(max(rng.gauss(mean, std), 0.0), 4), "unit": unit, "timestamp": now,
            "model": "fraud-detector",
        }

    def _pipeline(self, rng: random.Random, i: int, now: float, bad: bool) -> tuple[str, str, dict[str, Any]]:
        age = rng.gauss(30, 8) if not bad else 300 + (i - self.steps * self.onset) * 3  # the nightly job hung
        return INFRASTRUCTURE, "feature-pipeline", {
            "type": "infra", "source": "feature-pipeline", "source_kind": "pipeline", "metric": "freshness_seconds",
            "value": round(max(age, 1.0), 2), "unit": "s", "timestamp": now, "model": "churn-model",
        }


_API_METRICS = (
    ("cpu_utilisation", 45.0, 6.0, "%"),
    ("memory_utilisation", 62.0, 3.0, "%"),
    ("error_rate", 0.01, 0.003, "ratio"),
    ("p99_latency_ms", 80.0, 10.0, "ms"),
    ("requests_per_second", 220.0, 25.0, "1/s"),
)
