"""A register's steps: growth within the rating, exchanges, wraps — never a silent reset."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.metering.intervals import register_intervals
from vpp.metering.plausibility import (
    RATING_MARGIN,
    RESOLUTION_WH,
    CounterFault,
    CounterRules,
    counter_step,
    screen_register,
)
from vpp.metering.registers import MeterExchange, RegisterReading

T0 = datetime(2026, 7, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + minutes * MIN


@pytest.mark.parametrize(
    ("prev_wh", "value_wh", "rules", "energy_wh", "fault"),
    [
        # 43,470 W for 5 minutes: 3,622.5 Wh, +10 % and 10 Wh → at most 3,994.75 Wh
        (1_000, 4_994, CounterRules(43_470), 3_994, None),
        (1_000, 4_995, CounterRules(43_470), 0, CounterFault.ABOVE_RATING),
        # the spoofed message of the issue: +3,003.87 kWh in 5 minutes
        (1_000, 3_004_870, CounterRules(43_470), 0, CounterFault.ABOVE_RATING),
        # no rating: any growth
        (1_000, 3_004_870, CounterRules(), 3_003_870, None),
        # a float register's last digit: no growth, no fault
        (1_000.4, 1_000.0, CounterRules(43_470), 0, None),
        (1_000, 998, CounterRules(43_470), 0, CounterFault.DECREASE),
        # a wrap at the register's top (2^32 Wh): 96 + 4 Wh
        (2**32 - 4, 96, CounterRules(43_470, rollover_wh=2**32), 100, None),
        # "a wrap" from the middle of the register implies 4.29 GWh in 5 minutes: refused
        (2_000_000, 1_999_000, CounterRules(43_470, rollover_wh=2**32), 0, CounterFault.DECREASE),
    ],
)
def test_one_step_of_a_register(
    prev_wh: float,
    value_wh: float,
    rules: CounterRules,
    energy_wh: float,
    fault: CounterFault | None,
) -> None:
    step = counter_step(at(0), prev_wh, at(5), value_wh, rules)
    assert (step.energy_wh, step.fault) == (energy_wh, fault)
    if fault is not None:
        assert step.detail


def test_the_rating_bound_is_rating_times_time_with_margin_and_resolution() -> None:
    rules = CounterRules(max_power_w=3_600)  # 1 Wh per second
    limit = 300 * (1 + RATING_MARGIN) + RESOLUTION_WH  # 340 Wh in 5 minutes
    assert counter_step(at(0), 0, at(5), limit, rules).fault is None
    assert counter_step(at(0), 0, at(5), limit + 1, rules).fault is CounterFault.ABOVE_RATING
    # two readings at the same instant may differ by one register step, not more
    assert counter_step(at(0), 0, at(0), RESOLUTION_WH, rules).fault is None
    assert counter_step(at(0), 0, at(0), RESOLUTION_WH + 1, rules).fault is not None


def test_steps_across_recorded_exchanges_join_the_meters() -> None:
    ex1 = MeterExchange(at(2), old_final_wh=1_070, new_initial_wh=0)
    ex2 = MeterExchange(at(3), old_final_wh=25, new_initial_wh=5)
    rules = CounterRules(43_470, exchanges=(ex1, ex2))
    # 1,050 → 1,070 on the first meter, 0 → 25 on the second, 5 → 30 on the third
    assert counter_step(at(0), 1_050, at(5), 30, rules).energy_wh == 20 + 25 + 25
    below = counter_step(at(0), 1_050, at(5), 4, rules)
    assert below.fault is CounterFault.DECREASE
    assert below.exchange == ex2
    above = counter_step(at(0), 1_080, at(5), 30, CounterRules(exchanges=(ex1,)))
    assert above.fault is CounterFault.DECREASE
    assert above.exchange == ex1


def test_a_spoofed_jump_is_refused_and_the_genuine_readings_after_it_meter() -> None:
    rs = [RegisterReading(at(m), v) for m, v in [(0, 1_000), (5, 1_100), (7, 3_004_870),
                                                 (10, 1_200), (15, 1_300)]]  # fmt: skip
    kept, refused = screen_register(rs, CounterRules(max_power_w=43_470))
    assert [r.value_wh for r in kept] == [1_000, 1_100, 1_200, 1_300]
    assert [(r.reading.value_wh, r.step.fault) for r in refused] == [
        (3_004_870, CounterFault.ABOVE_RATING)
    ]
    ivs = register_intervals("m", rs, max_power_w=43_470)
    assert [iv.energy_wh for iv in ivs] == [300]


def test_a_recorded_exchange_and_a_wrap_are_billed_exactly() -> None:
    # exchange at 7': old meter 1,000 → 1,050 (5') → final 1,070; new meter 0 → 30 (10') → 60
    ex = MeterExchange(at(7), old_final_wh=1_070, new_initial_wh=0)
    rs = [RegisterReading(at(m), v) for m, v in [(0, 1_000), (5, 1_050), (10, 30), (15, 60)]]
    assert [iv.energy_wh for iv in register_intervals("m", rs, exchanges=[ex])] == [130]
    # wrap of a 100,000 Wh register between 5' and 10'
    top = 100_000
    rs = [RegisterReading(at(m), v) for m, v in [(0, 99_950), (5, 99_990), (10, 30), (15, 70)]]
    ivs = register_intervals("m", rs, rollover_wh=top, max_power_w=10_000)
    assert [iv.energy_wh for iv in ivs] == [40 + 40 + 40]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 600), st.integers(0, 300), st.booleans(), st.integers(1, 10**7)),
        min_size=2,
        max_size=50,
    )
)
def test_whatever_is_injected_the_kept_register_only_grows_within_the_rating(
    steps: list[tuple[int, int, bool, int]],
) -> None:
    """A genuine counter (≤ 3,600 W) with arbitrary spoofed values mixed in: the kept
    readings never fall and never grow faster than the rating allows, so whatever is
    injected, the intervals bill no more than the rating allows over the time."""
    rules = CounterRules(max_power_w=3_600)
    t, value = T0, 10_000
    rs: list[RegisterReading] = []
    for dt_s, grow, spoof, fake in steps:
        t += timedelta(seconds=dt_s)
        value += min(grow, dt_s)  # at most 1 Wh/s
        rs.append(RegisterReading(t, fake if spoof else value))
    kept, _ = screen_register(rs, rules)
    for a, b in itertools.pairwise(kept):
        assert b.value_wh >= a.value_wh
        limit = 3_600 * (b.ts - a.ts).total_seconds() / 3600 * (1 + RATING_MARGIN)
        assert b.value_wh - a.value_wh <= limit + RESOLUTION_WH
    billed = sum(iv.energy_wh for iv in register_intervals("m", rs, max_power_w=3_600))
    span_s = (rs[-1].ts - rs[0].ts).total_seconds()
    assert billed <= span_s * (1 + RATING_MARGIN) + RESOLUTION_WH * len(rs)
