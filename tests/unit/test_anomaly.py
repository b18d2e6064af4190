"""SeriesAnomaly, the per-metric anomaly score behind ServiceMonitor.score and ``emlops backtest`` on a CSV."""

from __future__ import annotations

import random

import pytest

from models.anomaly import SeriesAnomaly
from models.schema import InfraEvent
from models.service_monitor import ServiceMonitor


def alarms(values: list[float], **params) -> list[int]:
    series = SeriesAnomaly(**params)
    return [i for i, x in enumerate(values) if series.update(x) >= series.alarm]


def noisy(seed: int, n: int, mean: float = 10.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, 1.0) for _ in range(n)]


def test_a_spike_beyond_the_learnt_range_scores_one():
    values = noisy(3, 3000)
    values[2500] = 100.0
    series = SeriesAnomaly()
    scores = [series.update(x) for x in values]
    assert scores[2500] == 1.0 and series.samples == 3000
    # The cooldown caps the next values below the alarm: one spike, one alarm.
    assert max(scores[2501:2601]) < series.alarm


def test_scores_are_zero_during_the_warm_up_and_stay_in_0_1():
    values = noisy(1, 2000)
    values[100] = 1e6
    series = SeriesAnomaly(warmup=300)
    scores = [series.update(x) for x in values]
    assert scores[:301] == [0.0] * 301
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_stationary_gaussian_noise_alarms_rarely_and_reproducibly():
    # Gaussian noise sets a new record now and then: the score sees it (NAB rewards that); the paging
    # rules of ServiceMonitor add a z gate and persistence on top.
    assert alarms(noisy(0, 20_000, 0.0)) == [1771, 11155, 14836]


def test_long_stationary_noise_does_not_alarm_as_its_surprise_grows_regular():
    # Once the model has learnt the noise, the averaged surprise varies little, and its variance (the
    # yardstick) shrinks with it: the variance floor keeps ordinary noise from then scoring as extreme.
    values = noisy(0, 60_000, 0.0)
    assert alarms(values, min_z=2.0) == [1771, 11155, 14836, 44140]
    assert alarms(values, min_z=2.0, variance_floor=1e-4) == [1771, 11155, 14836, 43350, 44140, 48782, 51660, 57715]


def test_a_level_shift_is_an_alarm_within_a_few_values():
    rng = random.Random(1)
    values = [rng.gauss(0 if i < 3000 else 3, 1) for i in range(6000)]
    assert [i for i in alarms(values) if i >= 3000][:1] == [3004]


def test_min_z_keeps_small_new_records_from_scoring_one():
    values = noisy(3, 3000)
    values[2000] = max(values[:2000]) + 0.5  # a new record, but barely 3.5 sigma
    loose, strict = SeriesAnomaly(min_z=0.0), SeriesAnomaly(min_z=5.0)
    assert [loose.update(x) for x in values][2000] == 1.0
    assert [strict.update(x) for x in values][2000] < 1.0


@pytest.mark.parametrize("params", [{"bins": 0}, {"order": 0}, {"span": 0}, {"short": 0}, {"warmup": -1},
                                    {"tolerance": -0.1}, {"min_z": -1}, {"alarm": 0}, {"alarm": 1.5},
                                    {"cooldown": -1}, {"variance_floor": 0}, {"max_contexts": 0}])
def test_bad_hyperparameters_raise(params):
    with pytest.raises(ValueError):
        SeriesAnomaly(**params)


def test_memory_is_bounded_by_max_contexts():
    series = SeriesAnomaly(bins=200, order=3, max_contexts=50)
    for x in noisy(2, 5000):
        series.update(x)
    assert len(series._counts) == 50


def test_service_monitor_reports_the_metric_score_and_the_joint_score():
    monitor = ServiceMonitor("api")
    for i, x in enumerate(noisy(5, 1000)):
        monitor.observe(InfraEvent("api", "cpu" if i % 2 else "memory", x, float(i)))
    monitor.observe(InfraEvent("api", "cpu", 500.0, 1000.0))
    state = monitor.state()
    assert state["anomaly_score"] >= monitor.config.series_alarm * 0.999 and 0.0 <= state["joint_anomaly_score"] <= 1.0  # (capped if in cooldown)
