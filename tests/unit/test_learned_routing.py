"""The learned router adds the areas operators keep asking for, only after enough corrections, and only
to incidents that look like the corrected ones."""

from __future__ import annotations

import pytest

from models.learned_routing import AreaLearner, incident_features
from models.schema import Area, DetectionKind

DRIFT = incident_features([DetectionKind.FEATURE_DRIFT], {"model": "churn", "feature": "spend"})
OTHER_FEATURE = incident_features([DetectionKind.FEATURE_DRIFT], {"model": "churn", "feature": "tenure"})
UNRELATED = incident_features([DetectionKind.INFRA_ANOMALY], {"source": "api", "metric": "cpu"})
WANTED = (Area.DATA_OPERATIONS, Area.BUSINESS, Area.USER)


def test_nothing_is_added_before_min_corrections():
    learner = AreaLearner(min_corrections=3)
    for _ in range(2):
        learner.learn(DRIFT, WANTED)
    assert learner.extra_areas(DRIFT, [Area.DATA_OPERATIONS]) == ()


def test_corrections_generalise_to_look_alikes_but_not_to_unrelated_incidents():
    learner = AreaLearner(min_corrections=3)
    for _ in range(3):
        learner.learn(DRIFT, WANTED)
    assert learner.extra_areas(DRIFT, [Area.DATA_OPERATIONS]) == (Area.BUSINESS, Area.USER)
    assert learner.extra_areas(OTHER_FEATURE, [Area.DATA_OPERATIONS, Area.BUSINESS]) == (Area.USER,)
    assert learner.extra_areas(UNRELATED, [Area.TECHNICAL_OPERATIONS]) == ()


def test_confirmations_outweigh_a_single_odd_correction():
    learner = AreaLearner(min_corrections=3)
    learner.learn(DRIFT, WANTED)
    for _ in range(5):
        learner.learn(DRIFT, (Area.DATA_OPERATIONS, Area.BUSINESS))
    assert learner.extra_areas(DRIFT, [Area.DATA_OPERATIONS, Area.BUSINESS]) == ()


def test_snapshot_round_trip_keeps_what_was_learnt():
    learner = AreaLearner(min_corrections=1)
    learner.learn(DRIFT, WANTED)
    restored = AreaLearner.restore(learner.snapshot())
    assert restored.corrections == 1
    assert restored.extra_areas(DRIFT, [Area.DATA_OPERATIONS]) == learner.extra_areas(DRIFT, [Area.DATA_OPERATIONS])


@pytest.mark.parametrize("kwargs", [{"min_corrections": 0}, {"threshold": 0.4}, {"learning_rate": 0}])
def test_bad_hyperparameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        AreaLearner(**kwargs)
