"""SeriesAnomaly, the per-metric anomaly score behind ServiceMonitor.score and ``emlops backtest`` on a CSV."""

from __future__ import annotations

import random

import pytest

from models.anomaly import SeriesAnomaly
from models.config import MonitorConfig
from models.schema import DetectionKind, InfraEvent
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


def test_a_value_beyond_everything_seen_alarms_even_in_the_cooldown():
    values = noisy(3, 3000)
    values[2500], values[2550], values[2560] = 100.0, 200.0, 150.0
    assert [i for i in alarms(values) if i >= 2500] == [2500, 2550]  # 150 is inside the range 200 made


def test_scores_are_zero_during_the_warm_up_and_stay_in_0_1():
    values = noisy(1, 2000)
    values[100] = 1e6
    series = SeriesAnomaly(warmup=300)
    scores = [series.update(x) for x in values]
    assert scores[:301] == [0.0] * 301
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_stationary_gaussian_noise_alarms_rarely_and_reproducibly():
    # Gaussian noise sets a new record now and then: the score sees it (NAB rewards that).
    assert alarms(noisy(0, 20_000, 0.0)) == [1771, 11155, 14836]


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


def series_params(c: MonitorConfig) -> dict:
    return dict(bins=c.series_bins, order=c.series_order, span=c.series_span, warmup=c.series_warmup,
                tolerance=c.series_tolerance, min_z=c.series_min_z, alarm=c.series_alarm, cooldown=c.series_cooldown)


def test_service_monitor_pages_exactly_where_the_series_score_reaches_its_alarm():
    # What pages is what `emlops backtest` scores and the NAB benchmark measures: per metric, the readings
    # whose SeriesAnomaly score reaches series_alarm, whatever the other metrics of the source do.
    rng = random.Random(11)
    cpu = [rng.gauss(40 if i < 2000 else 52, 2) for i in range(4000)]  # a lasting shift of 6 sd
    cpu[3000] = 80.0  # and a one-off spike
    memory = noisy(12, 4000, 60.0)
    monitor = ServiceMonitor("api")
    paged: dict[str, list[int]] = {"cpu": [], "memory": []}
    for i in range(4000):
        for metric, values in (("cpu", cpu), ("memory", memory)):
            for d in monitor.observe(InfraEvent("api", metric, values[i], float(i))):
                assert d.kind == DetectionKind.INFRA_ANOMALY and d.entity["metric"] == metric
                assert d.score == d.evidence["score"] >= monitor.config.series_alarm
                paged[metric].append(i)
    expected = {metric: alarms(values, **series_params(monitor.config))
                for metric, values in (("cpu", cpu), ("memory", memory))}
    assert paged == expected
    assert 3000 in paged["cpu"] and any(2000 <= i < 2010 for i in paged["cpu"])
