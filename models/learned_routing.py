"""Routing that learns from operators: when someone corrects an incident's areas, future look-alikes get
the areas people actually wanted, on top of the rules.

The rules stay the floor (learning only adds areas), nothing is added before ``min_corrections`` have been
seen, and an area is added only when the model is confident (``threshold``), so one odd correction does
not re-route a whole fleet. One River logistic regression per area (binary relevance) over one-hot
features of the incident: its kinds and the entity labels that say what it is about. There is no
intercept: an incident sharing no feature with what was learnt scores 0.5 everywhere and gets nothing
added. Incidents resolved without a correction are learnt too, as confirmations of their areas, so the
model also sees where the rules were right.
"""

from __future__ import annotations

import pickle
from typing import Iterable, Mapping

from river import linear_model, multioutput, optim

from models.schema import Area, DetectionKind

LABELS_USED = ("model", "source", "source_kind", "feature", "metric", "segment")


def incident_features(kinds: Iterable[DetectionKind], labels: Mapping[str, str]) -> dict[str, float]:
    x = {f"kind={k.value}": 1.0 for k in kinds}
    for name in LABELS_USED:
        for value in labels.get(name, "").split(","):
            if value:
                x[f"{name}={value}"] = 1.0
    return x


class AreaLearner:
    """Parameters
    ----------
    min_corrections
        Corrections to learn from before any area is added.
    threshold
        Probability above which an area is added.
    learning_rate
        Step of the SGD optimiser; corrections are few, so steps are large.
    """

    def __init__(self, min_corrections: int = 3, threshold: float = 0.7, learning_rate: float = 0.5) -> None:
        if min_corrections < 1 or not 0.5 <= threshold < 1 or learning_rate <= 0:
            raise ValueError("min_corrections >= 1, threshold in [0.5, 1) and learning_rate > 0 are required")
        self.min_corrections = min_corrections
        self.threshold = threshold
        self.learning_rate = learning_rate
        self._model = multioutput.PerOutputClassifier(
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), intercept_lr=0.0)
        )
        self.corrections = 0

    def learn(self, features: dict[str, float], areas: Iterable[Area]) -> None:
        wanted = set(areas)
        self._model.learn_one(features, {a.value: a in wanted for a in Area})
        self.corrections += 1

    def extra_areas(self, features: dict[str, float], rule_areas: Iterable[Area]) -> tuple[Area, ...]:
        """Areas to add to what the rules gave (never to remove: the rules stay the floor)."""
        if self.corrections < self.min_corrections:
            return ()
        have = set(rule_areas)
        probabilities = self._model.predict_proba_one(features)
        return tuple(
            a for a in Area
            if a not in have and probabilities.get(a.value, {}).get(True, 0.0) >= self.threshold
        )

    def snapshot(self) -> bytes:
        return pickle.dumps(self)

    @staticmethod
    def restore(blob: bytes) -> AreaLearner:
        learner = pickle.loads(blob)
        if not isinstance(learner, AreaLearner):
            raise ValueError("not an AreaLearner snapshot")
        return learner
