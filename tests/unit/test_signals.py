"""MeanShift on seeded streams, River-style: the exact index of every alarm is pinned."""

from __future__ import annotations

import random
import statistics

import pytest

from river import drift

from models.signals import DOWN, UP, MeanShift, Shift, adaptive_window


def gaussian(seed: int, *segments: tuple[int, float], std: float = 1.0) -> list[float]:
    """Consecutive segments of ``(length, mean)`` drawn from one seeded generator."""
    rng = random.Random(seed)
    return [rng.gauss(mean, std) for length, mean in segments for _ in range(length)]


def alarms(stream: list[float], **params) -> list[tuple[int, Shift]]:
    """Feed the stream to a fresh MeanShift; return ``(index, shift)`` for every alarm."""
    signal = MeanShift(**params)
    return [(i, shift) for i, x in enumerate(stream) if (shift := signal.update(x)) is not None]


def indexes(stream: list[float], **params) -> list[int]:
    return [i for i, _ in alarms(stream, **params)]


@pytest.mark.parametrize("seed, expected", [(0, 5055), (1, 5039), (2, 5071)])
def test_one_sigma_step_is_reported_once(seed, expected):
    stream = gaussian(seed, (5000, 0.0), (5000, 1.0))
    found = alarms(stream)
    assert [i for i, _ in found] == [expected]
    shift = found[0][1]
    assert shift.direction == UP
    assert shift.before_mean == pytest.approx(0.0, abs=0.05)
    assert shift.before_count == pytest.approx(5000, abs=10)  # the reference ends at the located change point
    # The after mean is the mean of the values since the change point: what this stream did after 5000.
    assert shift.after_mean == pytest.approx(statistics.fmean(stream[5000 : expected + 1]), abs=0.1)
    assert shift.reference_std == pytest.approx(1.0, abs=0.05)
    assert shift.effect_size == pytest.approx((shift.after_mean - shift.before_mean) / shift.reference_std)
    assert shift.samples == expected + 1


def test_shift_evidence_is_plain_and_rounded():
    (_, shift), = alarms(gaussian(0, (5000, 0.0), (5000, 1.0)))
    evidence = shift.as_evidence()
    assert evidence["statistic"] == "adwin_mean_shift"
    assert evidence["direction"] == "up"
    assert evidence["samples"] == 5056
    assert evidence["before_count"] == shift.before_count
    assert evidence["effect_size"] == round(shift.effect_size, 4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_alarm_on_a_long_stationary_stream(seed):
    assert indexes(gaussian(seed, (100_000, 0.0))) == []


def test_direction_down_ignores_an_upward_shift():
    assert indexes(gaussian(0, (5000, 0.0), (5000, 1.0)), direction=DOWN) == []


def test_direction_down_reports_a_downward_shift():
    found = alarms(gaussian(0, (5000, 0.0), (5000, -1.0)), direction=DOWN)
    assert [i for i, _ in found] == [5039]
    assert found[0][1].direction == DOWN


def test_direction_up_ignores_a_downward_shift():
    assert indexes(gaussian(0, (5000, 0.0), (5000, -1.0)), direction=UP) == []


def test_a_change_during_warm_up_is_held_back_until_min_samples():
    # The 3-sigma step at index 100 is seen by ADWIN long before; the alarm waits for the 300th value.
    assert indexes(gaussian(0, (100, 0.0), (900, 3.0)), min_samples=300) == [299]


def test_small_effects_are_not_worth_an_alarm():
    # ADWIN does see a 1-sigma step; a min_effect of 2 sigma keeps it from paging anyone.
    assert indexes(gaussian(0, (5000, 0.0), (5000, 1.0)), min_effect=2.0) == []


TWO_STEPS = gaussian(0, (5000, 0.0), (1500, 1.5), (3500, 3.0))


@pytest.mark.parametrize("cooldown, expected", [(2000, [5023]), (500, [5023, 6543]), (0, [5023, 6543])])
def test_cooldown_silences_changes_that_follow_an_alarm(cooldown, expected):
    assert indexes(TWO_STEPS, cooldown=cooldown) == expected


def test_second_alarm_is_measured_against_the_new_regime():
    (_, first), (_, second) = alarms(TWO_STEPS, cooldown=0)
    assert first.before_mean == pytest.approx(0.0, abs=0.05)
    assert second.before_mean == pytest.approx(1.5, abs=0.15)
    assert second.after_mean == pytest.approx(3.0, abs=0.5)


def test_constant_signal_that_moves_is_reported():
    found = alarms([10.0] * 1000 + [11.0] * 1000)
    assert [i for i, _ in found] == [1023]
    assert found[0][1].direction == UP
    shift = found[0][1]  # judged against the constant it was, by its relative change (min_relative=0.1)
    assert (shift.before_mean, shift.after_mean, shift.reference_std, shift.before_count) == (10.0, 11.0, 0.0, 1000)
    assert shift.effect_size == pytest.approx(0.1)


def test_relative_change_below_min_relative_is_ignored():
    # The values between the change and ADWIN's clocked signal stay out of the reference: it stays constant.
    assert indexes([10.0] * 1000 + [10.5] * 1000, min_relative=0.1) == []


def test_a_jump_reads_at_its_size_although_adwin_notices_it_values_later():
    stream = gaussian(0, (5000, 0.0), (5000, 10.0))
    (i, shift), = alarms(stream)
    assert i == 5007  # ADWIN's first clocked check after the jump
    assert shift.before_count == 5000  # the change point, located among the held-back values
    assert shift.reference_std == pytest.approx(1.0, abs=0.05)  # no value of the new regime in the reference
    assert shift.after_mean == pytest.approx(statistics.fmean(stream[5000:5008]))
    assert shift.effect_size > 9


def test_a_snapshot_taken_before_the_held_back_reference_restores_and_carries_on():
    stream = gaussian(0, (5000, 0.0), (5000, 1.0))
    signal = MeanShift()
    for x in stream[:3000]:
        signal.update(x)
    for name in ("lag", "_held", "_after_n", "_after_sum", "_gate_n", "_gate_mean", "_gate_m2"):
        delattr(signal, name)  # the state a snapshot of the earlier MeanShift held
    restored = MeanShift.restore(signal.snapshot())
    assert [i for i, x in enumerate(stream[3000:], 3000) if restored.update(x) is not None] == [5055]


def test_the_adaptive_window_signals_where_rivers_adwin_does():
    # MeanShift drives River's compiled window directly, replacing it after a drift as ADWIN.update would.
    stream = gaussian(0, (3000, 0.0), (3000, 2.0), (3000, 0.0), (3000, 0.5), (3000, 5.0))
    adwin, window, ours = drift.ADWIN(delta=1e-4, clock=16), adaptive_window(1e-4, 16), []
    for x in stream:
        if window.update(x):
            ours.append(True)
            window = adaptive_window(1e-4, 16)
        else:
            ours.append(False)
        adwin.update(x)
        assert ours[-1] == adwin.drift_detected
    assert sum(ours) >= 4


def test_the_compiled_window_answers_and_holds_exactly_what_rivers_does():
    """``models/_numeric.c`` ports River's ADWIN window: value by value, the same answer and the same width,
    total and variance (to the bit) as River's, through level shifts, repeated and huge values, several
    settings, and pickling."""
    import pickle

    from models import signals

    if signals._WINDOW is None:
        pytest.skip("models._numeric was not built (no C compiler at install)")
    rng = random.Random(3)
    fires = 0
    for trial in range(16):
        delta, clock = rng.choice([1e-4, 0.002, 0.5]), rng.choice([1, 4, 16, 32])
        river, ours = drift.ADWIN(delta=delta, clock=clock)._helper, adaptive_window(delta, clock)
        assert type(ours) is not type(river)
        level = 0.0
        for i in range(rng.choice([500, 4000, 12000])):
            if rng.random() < 0.002:
                level = rng.gauss(0, 5)
            x = rng.choice([rng.gauss(level, 1.0), float(rng.randint(0, 3)), level])
            if rng.random() < 0.0005:
                x = 1e12
            answer = river.update(x)
            assert ours.update(x) == answer, (trial, i)
            fires += answer
            if i % 997 == 0:
                ours = pickle.loads(pickle.dumps(ours))
            assert (ours.get_width(), ours.get_total(), ours.get_variance()) == (
                river.get_width(), river.get_total(), river.get_variance()), (trial, i)
        assert ours.get_n_detections() == river.get_n_detections()
    assert fires > 50


def test_a_snapshot_that_held_rivers_adwin_restores_and_carries_on():
    stream = gaussian(0, (5000, 0.0), (5000, 1.0))
    signal = MeanShift()
    for x in stream[:3000]:
        signal.update(x)
    adwin = drift.ADWIN(delta=signal.delta, clock=signal.clock)
    adwin._helper = signal.__dict__.pop("_window")  # the state a snapshot of the earlier MeanShift held
    signal._adwin = adwin
    restored = MeanShift.restore(signal.snapshot())
    assert [i for i, x in enumerate(stream[3000:], 3000) if restored.update(x) is not None] == [5055]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"delta": 0}, r"delta must be in \(0, 1\)"),
        ({"delta": 1}, r"delta must be in \(0, 1\)"),
        ({"direction": "sideways"}, r"direction must be one of"),
        ({"min_samples": 0}, r"min_samples, recent and clock must be >= 1"),
        ({"recent": 0}, r"min_samples, recent and clock must be >= 1"),
        ({"clock": 0}, r"min_samples, recent and clock must be >= 1"),
        ({"cooldown": -1}, r"cooldown, confirm, min_effect and min_relative must be >= 0"),
        ({"confirm": -1}, r"cooldown, confirm, min_effect and min_relative must be >= 0"),
        ({"min_effect": -0.5}, r"cooldown, confirm, min_effect and min_relative must be >= 0"),
        ({"min_relative": -0.1}, r"cooldown, confirm, min_effect and min_relative must be >= 0"),
        ({"lag": 0}, r"lag must be >= 1"),
    ],
)
def test_bad_hyperparameters_raise_at_construction(params, message):
    with pytest.raises(ValueError, match=message):
        MeanShift(**params)


def test_hyperparameters_are_stored_under_their_own_names():
    signal = MeanShift(delta=1e-3, direction=UP, min_samples=10, min_effect=1.0, cooldown=7)
    assert (signal.delta, signal.direction, signal.min_samples, signal.min_effect, signal.cooldown) == (
        1e-3, UP, 10, 1.0, 7)
    assert (signal.samples, signal.mean) == (0, 0.0)


def _signal_state(signal: MeanShift) -> dict:
    """Everything a signal holds, its ADWIN window by what it reads back."""
    state = {k: v for k, v in signal.__dict__.items() if k != "_window"}
    state["_held"] = list(state["_held"])
    window = signal._window
    return {**state, "window": (window.get_width(), window.get_total(), window.get_variance())}


@pytest.mark.parametrize("step", ["compiled", "numpy", "with rivers windows"])
def test_a_bank_of_signals_finds_and_holds_exactly_what_the_signals_fed_one_by_one_do(step, monkeypatch):
    """The bank's learning step (compiled when every signal gets a value, numpy otherwise, or numpy always)
    must leave every bit as ``MeanShift.update`` would, through changes (signals leaving and rejoining the
    bank), values that skip a signal, a snapshot, and a signal added late; also when some signals hold
    River's own windows, as restored from a snapshot taken where the step was not compiled."""
    import pickle

    import numpy as np

    from models import signals
    from models.signals import MeanShiftBank

    if step == "numpy":
        monkeypatch.setattr(signals, "_numeric", None)
    elif signals._numeric is None:
        pytest.skip("models._numeric was not built (no C compiler at install)")

    rng = random.Random(5)
    count, steps = 12, 9000
    bank, alone = MeanShiftBank(), []
    for j in range(count - 1):
        signal = MeanShift(cooldown=300)
        if step == "with rivers windows" and j % 2:
            signal._window = drift.ADWIN(delta=signal.delta, clock=signal.clock)._helper
        bank.add(signal)
        alone.append(MeanShift(cooldown=300))
    found_bank: list[tuple[int, int, Shift]] = []
    found_alone: list[tuple[int, int, Shift]] = []
    for step in range(steps):
        if step == 700:
            bank.add(MeanShift(cooldown=300))
            alone.append(MeanShift(cooldown=300))
        if step == 4000:
            bank = pickle.loads(pickle.dumps(bank))
        # Each signal's level moves now and then; some values are missing at random.
        values = [rng.gauss(3.0 * ((step // (1500 + 250 * j)) % 2), 1.0 + j % 3) for j in range(len(alone))]
        present = [j for j in range(len(alone)) if rng.random() > (0.3 if j % 4 == 0 else 0.01)]
        if len(present) == len(alone) and step % 3:
            shifts = bank.update(np.array(values))
        else:
            shifts = bank.update(np.array([values[j] for j in present]), np.array(present, dtype=np.int64))
        found_bank += [(step, j, shift) for j, shift in shifts]
        found_alone += [(step, j, shift) for j in present if (shift := alone[j].update(values[j])) is not None]
    assert len(found_alone) > 20
    assert found_bank == found_alone
    bank = pickle.loads(pickle.dumps(bank))  # writes every signal's state back
    assert [_signal_state(s) for s in bank.signals] == [_signal_state(s) for s in alone]
