"""Register readings → quarter-hour intervals: exact sums, substitutes, resets, exchanges."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.metering.intervals import (
    MeteredInterval,
    fill_missing,
    register_intervals,
)
from vpp.metering.member import member_intervals
from vpp.metering.plausibility import CounterFault, CounterRules, screen_register
from vpp.metering.quality import IntervalQuality, worst
from vpp.metering.registers import (
    MeterExchange,
    MeteringInputError,
    ReadingQuality,
    RegisterReading,
)

T0 = datetime(2026, 7, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
L1, L2 = IntervalQuality.L1, IntervalQuality.L2


def readings(values: dict[int, int] | dict[float, int]) -> list[RegisterReading]:
    """minute → register value (Wh)."""
    return [RegisterReading(T0 + timedelta(minutes=m), v) for m, v in sorted(values.items())]


def energies(ivs: tuple[MeteredInterval, ...]) -> list[tuple[int, IntervalQuality]]:
    return [(iv.energy_wh, iv.quality) for iv in ivs]


def test_readings_on_the_boundaries_give_real_intervals() -> None:
    ivs = register_intervals("m", readings({0: 1000, 5: 1010, 10: 1020, 15: 1100, 30: 1130}))
    # 15 → 30 is one 15-minute segment: longer than max_gap_s=300 → substitute
    assert energies(ivs) == [(100, L1), (30, L2)]
    assert ivs[0].qh_start == T0


def test_interpolation_between_readings_rounds_the_register_down() -> None:
    # 1 reading/min from 00:01:30 to 00:31:30, growing 7 Wh per minute
    values = {1.5 + k: 7 * k for k in range(31)}
    ivs = register_intervals("m", readings(values))
    # boundaries 15 and 30: E = 7·13.5 = 94.5 → 94, 7·28.5 = 199.5 → 199
    assert energies(ivs) == [(105, L1)]
    assert ivs[0].qh_start == T0 + QH


def test_a_gap_is_interpolated_and_marked_substitute() -> None:
    values = {m: 10 * m for m in range(0, 61, 5) if not 10 < m < 50}
    ivs = register_intervals("m", readings(values))
    assert energies(ivs) == [(150, L2), (150, L2), (150, L2), (150, L2)]
    # late readings fill the gap: intervals become real, the restatement is visible
    full = register_intervals("m", readings({m: 10 * m + (m > 20) * 40 for m in range(0, 61, 5)}))
    assert [iv.qh_start for iv in full] == [iv.qh_start for iv in ivs]
    assert energies(full) == [(150, L1), (190, L1), (150, L1), (150, L1)]
    assert sum(iv.energy_wh for iv in full) == 640


def test_a_counter_that_goes_down_bills_nothing_from_the_lower_readings() -> None:
    # 12' and 15' fell below 5100 Wh with no exchange recorded: no reset, they are left out
    rs = readings({0: 5000, 5: 5050, 10: 5100, 12: 20, 15: 50, 20: 5150, 30: 5250})
    ivs = register_intervals("m", rs)
    # E(15') between 10' (5100) and 20' (5150): 100 + 25; the 10-minute segment is a gap
    assert energies(ivs) == [(125, L2), (125, L2)]
    assert sum(iv.energy_wh for iv in ivs) == 5250 - 5000
    _, refused = screen_register(rs, CounterRules())
    assert [(r.reading.value_wh, r.step.fault) for r in refused] == [
        (20, CounterFault.DECREASE),
        (50, CounterFault.DECREASE),
    ]


def test_a_register_wrap_is_counted_through() -> None:
    ivs = register_intervals(
        "m", readings({0: 99_950, 5: 99_990, 10: 30, 15: 70}), rollover_wh=100_000
    )
    assert energies(ivs) == [(120, L1)]


def test_a_meter_exchange_joins_old_and_new_register() -> None:
    ex = MeterExchange(T0 + timedelta(minutes=7), old_final_wh=1_070, new_initial_wh=0)
    ivs = register_intervals("m", readings({0: 1_000, 5: 1_050, 10: 30, 15: 60}), exchanges=[ex])
    # 50 before, 1070 − 1050 = 20 on the old meter, 30 − 0 = 30 on the new one, then 30
    assert energies(ivs) == [(130, L1)]
    with pytest.raises(MeteringInputError, match="contradict") as err:
        register_intervals(
            "m",
            readings({0: 1_000, 5: 1_050, 10: 30, 15: 60}),
            exchanges=[MeterExchange(T0 + timedelta(minutes=7), 1_000, 0)],
        )
    assert err.value.field == "exchanges"


@pytest.mark.parametrize(
    ("rs", "field", "match"),
    [
        (readings({0: 10, 5: -1}), "value_wh", "negative"),
        (readings({0: 10}) * 2, "ts", "duplicated"),
        (list(reversed(readings({0: 10, 5: 20}))), "ts", "out of order"),
        ([RegisterReading(datetime(2026, 1, 1), 1)], "ts", "naive"),
        ([RegisterReading(T0, 1.5)], "value_wh", "whole Wh"),  # type: ignore[arg-type]
    ],
)
def test_bad_readings_name_meter_instant_and_field(
    rs: list[RegisterReading], field: str, match: str
) -> None:
    with pytest.raises(MeteringInputError, match=match) as err:
        register_intervals("meter-7", rs)
    assert err.value.meter_id == "meter-7"
    assert err.value.field == field
    assert "meter-7" in str(err.value)


def test_unavailable_readings_are_skipped_and_substitute_readings_mark_intervals() -> None:
    rs = readings({0: 0, 5: 50, 10: 100, 15: 150, 20: 200, 25: 250, 30: 300})
    rs[1] = RegisterReading(rs[1].ts, 0, ReadingQuality.UNAVAILABLE)
    rs[4] = RegisterReading(rs[4].ts, 200, ReadingQuality.SUBSTITUTE)
    ivs = register_intervals("m", rs, max_gap_s=600)
    assert energies(ivs) == [(150, L1), (150, L2)]
    # with the default 300 s, the 10 minutes without the unavailable reading are a gap
    assert energies(register_intervals("m", rs)) == [(150, L2), (150, L2)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 3_000), st.integers(0, 500)), min_size=2, max_size=60),
    st.integers(0, 899),
)
def test_intervals_are_non_negative_and_sum_to_the_register_growth(
    steps: list[tuple[int, int]], offset_s: int
) -> None:
    t = T0 + timedelta(seconds=offset_s)
    value = 1_000
    rs = []
    for dt_s, grow in steps:
        rs.append(RegisterReading(t, value))
        t += timedelta(seconds=dt_s)
        value += grow
    ivs = register_intervals("m", rs)
    assert all(iv.energy_wh >= 0 for iv in ivs)
    assert all(b.qh_start - a.qh_start == QH for a, b in itertools.pairwise(ivs))
    if ivs:
        # the intervals are the register between the first and last boundary, floored
        first, last = ivs[0].qh_start, ivs[-1].qh_start + QH
        inside = [r for r in rs if first <= r.ts <= last]
        if inside and inside[0].ts == first and inside[-1].ts == last:
            assert sum(iv.energy_wh for iv in ivs) == inside[-1].value_wh - inside[0].value_wh


def test_member_channels_combine_into_settlement_intervals() -> None:
    flat = {m: 0 for m in range(0, 31, 5)}
    imp = register_intervals("imp", readings({m: 4 * m for m in flat}))
    exp = register_intervals("exp", readings({m: 10 * m for m in flat}))
    pv = register_intervals("pv", readings({m: 14 * m for m in flat}))
    ivs = member_intervals("house-3", imp, exp, pv)
    assert [(iv.consumption_wh, iv.generation_wh, iv.own_generation_used_wh) for iv in ivs] == [
        (60, 150, 60),
        (60, 150, 60),
    ]
    assert all(iv.member_id == "house-3" and iv.quality is L1 for iv in ivs)
    # a quarter-hour missing on one channel is not produced
    assert len(member_intervals("house-3", imp, exp[:1])) == 1


def test_worst_quality() -> None:
    assert worst() is L1
    assert worst(L1, L2) is L2
    assert worst(IntervalQuality.L3, L2) is IntervalQuality.L3
    assert L2.is_substitute
    assert not L1.is_substitute


def test_fill_missing_estimates_l3_from_comparable_weeks() -> None:
    week = timedelta(days=7)
    known = (
        MeteredInterval(T0, 11, L1),
        MeteredInterval(T0 + QH, 12, L2),
        MeteredInterval(T0 + week, 21, L1),
        MeteredInterval(T0 + 2 * week + QH, 33, L1),
    )
    start, end = T0 + 2 * week, T0 + 2 * week + 3 * QH
    filled = fill_missing("m", known, start, end)
    assert [(iv.qh_start - start, iv.energy_wh, iv.quality) for iv in filled] == [
        (timedelta(0), 21, IntervalQuality.L3),  # one week earlier
        (QH, 33, L1),  # real value kept
        (2 * QH, 0, IntervalQuality.L3),  # nothing comparable within four weeks
    ]
    # two weeks back when the last week is missing too (and a substitute is comparable)
    assert fill_missing("m", known[:2], T0 + 2 * week + QH, T0 + 2 * week + 2 * QH)[0] == (
        MeteredInterval(T0 + 2 * week + QH, 12, IntervalQuality.L3)
    )
    with pytest.raises(MeteringInputError, match="quarter-hour") as err:
        fill_missing("m-9", known, T0 + timedelta(minutes=5), end)
    assert err.value.meter_id == "m-9"
