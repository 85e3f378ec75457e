"""Profiles behind the simulators: household energy per year, PV by day and night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sims.profiles import ClearSkyPv, HouseholdLoad, cloud_factor


def test_household_load_integrates_to_its_annual_consumption() -> None:
    load = HouseholdLoad(annual_kwh=4500.0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # sample every local quarter-hour of a year (UTC steps of 15 min cover all of them)
    energy_wh = sum(load.power_w(start + timedelta(minutes=15 * i)) * 0.25 for i in range(365 * 96))
    assert energy_wh / 1000.0 == pytest.approx(4500.0, rel=0.01)


def test_household_evening_peak_exceeds_night_base() -> None:
    load = HouseholdLoad(annual_kwh=4000.0)
    night = load.power_w(datetime(2026, 1, 14, 2, 0, tzinfo=UTC))  # 03:00 local
    evening = load.power_w(datetime(2026, 1, 14, 17, 0, tzinfo=UTC))  # 18:00 local
    assert 0 < night < evening


@pytest.mark.parametrize(
    ("when", "low_w", "high_w"),
    [
        (datetime(2026, 6, 21, 0, 0, tzinfo=UTC), 0.0, 0.0),  # night
        (datetime(2026, 6, 21, 11, 30, tzinfo=UTC), 6000.0, 10_000.0),  # summer noon, 10 kWp
        (datetime(2026, 12, 21, 11, 30, tzinfo=UTC), 2000.0, 8000.0),  # winter noon: lower
    ],
)
def test_clear_sky_pv(when: datetime, low_w: float, high_w: float) -> None:
    pv = ClearSkyPv(lat=49.01, lon=8.40, kwp=10.0)
    assert low_w <= pv.power_w(when) <= high_w


@settings(max_examples=50, deadline=None)
@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)), st.integers(0, 99)
)
def test_cloud_factor_stays_in_range(ts: datetime, seed: int) -> None:
    assert 0.15 <= cloud_factor(ts.replace(tzinfo=UTC), seed) <= 1.0
