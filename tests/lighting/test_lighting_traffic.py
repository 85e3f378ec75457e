"""Traffic adaptation with hysteresis: raise at once, lower after two low samples and the
dwell time, design class when the sensor is silent or implausible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lighting.traffic import TrafficRule, TrafficSample, TrafficState, adapt, wanted_steps

RULE = TrafficRule("s", capacity_veh_per_h=600.0)  # 50 % = 300 veh/h, 25 % = 150 veh/h
T0 = datetime(2026, 1, 14, 20, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def feed(samples: list[tuple[float, int | None]], state: TrafficState | None = None) -> list[int]:
    """Feed (minute, count) samples, each observed at its own minute; return the steps."""
    state = state or TrafficState()
    out = []
    for minute, count in samples:
        state = adapt(RULE, state, TrafficSample(at(minute), count), at(minute), 2)
        out.append(state.steps)
    return out


def test_flow_bands() -> None:
    # count × 6 = veh/h
    assert wanted_steps(RULE, 60 * 6, 2) == 0
    assert wanted_steps(RULE, 49 * 6, 2) == 1
    assert wanted_steps(RULE, 24 * 6, 2) == 2
    assert wanted_steps(RULE, 24 * 6, 1) == 1  # only one lower class permitted


def test_lowering_needs_two_low_samples_and_the_dwell_time() -> None:
    # samples every 10 minutes: first low sample at 0 (design held since 0), second at 10
    assert feed([(0, 40), (10, 40), (20, 40)]) == [0, 1, 1]


def test_dwell_blocks_lowering_before_ten_minutes() -> None:
    # samples every 5 minutes: two low samples by minute 5, but design held only 5 min
    assert feed([(0, 40), (5, 40), (10, 40)]) == [0, 0, 1]


def test_raise_at_once() -> None:
    steps = feed([(0, 10), (10, 10), (20, 10), (21, 200)])
    assert steps == [0, 2, 2, 0]


def test_one_high_sample_breaks_the_low_streak() -> None:
    assert feed([(0, 40), (10, 80), (20, 40), (30, 40)]) == [0, 0, 0, 1]


def test_two_classes_need_two_samples_that_both_allow_two() -> None:
    # 40/10 min = 240 veh/h (one lower), 10/10 min = 60 veh/h (two lower)
    assert feed([(0, 40), (10, 10), (20, 10)]) == [0, 1, 1]
    assert feed([(0, 10), (10, 10)]) == [0, 2]


def test_same_sample_twice_counts_once() -> None:
    state = adapt(RULE, TrafficState(), TrafficSample(at(0), 10), at(0), 2)
    state = adapt(RULE, state, TrafficSample(at(0), 10), at(10), 2)
    assert state.steps == 0
    assert state.low_streak == 1


def test_silent_sensor_returns_to_design_class() -> None:
    state = TrafficState()
    for minute in (0, 10, 20):
        state = adapt(RULE, state, TrafficSample(at(minute), 10), at(minute), 2)
    assert state.steps == 2
    still = adapt(RULE, state, None, at(40), 2)
    assert still.steps == 2  # 20 minutes of silence is within the 25-minute limit
    silent = adapt(RULE, state, None, at(46), 2)
    assert silent.steps == 0
    assert "silent" in silent.cause
    assert silent.fallback
    assert not state.fallback


def test_implausible_sensor_returns_to_design_class() -> None:
    state = TrafficState()
    for minute in (0, 10):
        state = adapt(RULE, state, TrafficSample(at(minute), 10), at(minute), 2)
    assert state.steps == 2
    for bad in (-1, 400):  # negative, or 2400 veh/h on a 600 veh/h street (limit 3×)
        after = adapt(RULE, state, TrafficSample(at(15), bad), at(15), 2)
        assert after.steps == 0
        assert "implausible" in after.cause
    missing = adapt(RULE, state, TrafficSample(at(15), None), at(15), 2)
    assert missing.steps == 0


def test_no_data_yet_means_design_class() -> None:
    state = adapt(RULE, TrafficState(), None, at(0), 2)
    assert state.steps == 0
    assert "no traffic data" in state.cause


events = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=900),  # seconds since the previous tick
        st.one_of(st.none(), st.integers(min_value=-2, max_value=400)),  # count
        st.booleans(),  # whether this tick brings a new sample
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(events)
def test_hysteresis_never_lowers_faster_than_the_dwell_time(
    ticks: list[tuple[int, int | None, bool]],
) -> None:
    state = TrafficState()
    now = T0
    sample: TrafficSample | None = None
    last_change = now
    steps = 0
    fresh: list[int | None] = []
    for gap_s, count, new in ticks:
        now += timedelta(seconds=gap_s)
        if new:
            sample = TrafficSample(now, count)
            fresh.append(count)
        state = adapt(RULE, state, sample, now, 2)
        assert 0 <= state.steps <= 2
        if state.steps != steps:
            if state.steps > steps:  # a lowering
                assert (now - last_change).total_seconds() >= RULE.min_dwell_s
                recent = fresh[-RULE.low_samples :]
                assert len(recent) == RULE.low_samples
                assert all(c is not None and 0 <= c * 6 < 300 for c in recent)
            last_change = now
            steps = state.steps
        if state.steps > 0:
            assert state.last_good_at is not None
            assert (now - state.last_good_at).total_seconds() <= RULE.max_silence_s
