"""The quarter-hour grid in UTC and Europe/Berlin: 92/96/100-quarter-hour days, floors, gaps."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.quarterhours import (
    QH,
    TimeGridError,
    ceil_qh,
    floor_qh,
    is_qh_boundary,
    local_day_bounds,
    local_day_quarter_hours,
    local_month_bounds,
    local_to_utc,
    qh_index,
    qh_start,
    quarter_hours_between,
    quarter_hours_in_day,
    require_qh_boundary,
)


@pytest.mark.parametrize(
    ("day", "count", "start_utc"),
    [
        (date(2026, 3, 29), 92, datetime(2026, 3, 28, 23, tzinfo=UTC)),  # spring forward
        (date(2026, 10, 25), 100, datetime(2026, 10, 24, 22, tzinfo=UTC)),  # fall back
        (date(2026, 7, 1), 96, datetime(2026, 6, 30, 22, tzinfo=UTC)),
        (date(2026, 1, 15), 96, datetime(2026, 1, 14, 23, tzinfo=UTC)),
        (date(2027, 3, 28), 92, datetime(2027, 3, 27, 23, tzinfo=UTC)),
    ],
)
def test_local_days_have_92_96_or_100_quarter_hours(
    day: date, count: int, start_utc: datetime
) -> None:
    assert quarter_hours_in_day(day) == count
    qhs = local_day_quarter_hours(day)
    assert qhs[0] == start_utc
    assert all(b - a == QH for a, b in itertools.pairwise(qhs))
    assert qhs[-1] + QH == local_day_bounds(day)[1]


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_floor_and_ceil_bracket_every_instant(naive: datetime) -> None:
    ts = naive.replace(tzinfo=UTC)
    lo, hi = floor_qh(ts), ceil_qh(ts)
    assert lo <= ts <= hi
    assert hi - lo in (timedelta(0), QH)
    assert is_qh_boundary(lo)
    assert is_qh_boundary(hi)
    assert (lo == hi) == is_qh_boundary(ts)
    assert qh_start(qh_index(ts)) == lo


def test_floor_works_in_any_zone() -> None:
    from zoneinfo import ZoneInfo

    ts = datetime(2026, 10, 25, 2, 20, fold=1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert floor_qh(ts) == datetime(2026, 10, 25, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wall", "match"),
    [
        (datetime(2026, 3, 29, 2, 30), "does not exist"),
        (datetime(2026, 10, 25, 2, 30), "ambiguous"),
    ],
)
def test_wall_clock_gaps_and_overlaps_are_refused(wall: datetime, match: str) -> None:
    with pytest.raises(TimeGridError, match=match):
        local_to_utc(wall)


def test_valid_wall_clock_time() -> None:
    assert local_to_utc(datetime(2026, 3, 29, 3, 0)) == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_naive_and_off_grid_instants_are_refused() -> None:
    with pytest.raises(TimeGridError, match="naive"):
        floor_qh(datetime(2026, 1, 1))
    with pytest.raises(TimeGridError, match="not on a quarter-hour"):
        require_qh_boundary(datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    with pytest.raises(TimeGridError, match="before start"):
        quarter_hours_between(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def test_month_bounds_and_year_length() -> None:
    start, end = local_month_bounds(2026, 3)
    assert (end - start) / QH == 31 * 96 - 4
    year = quarter_hours_between(local_month_bounds(2026, 1)[0], local_month_bounds(2026, 12)[1])
    assert len(year) == 365 * 96
