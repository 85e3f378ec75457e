"""PV and load forecasts: physical shape, scaling, the measured ratio and the history correction,
the profile cut from cached years."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from holidays import country_holidays

from vpp.forecast import (
    LoadProfile,
    PvSite,
    bdew_load_w,
    clear_sky_power_w,
    history_factor,
    measured_ratio,
    profile_window,
)

KASSEL = PvSite(51.3, 9.5, peak_power_w=10_000, tilt_deg=30, azimuth_deg=180)
JUNE = datetime(2026, 6, 21, 0, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 21, 0, 0, tzinfo=UTC)


def test_clear_sky_is_zero_at_night_and_peaks_near_solar_noon() -> None:
    p = np.asarray(clear_sky_power_w(KASSEL, JUNE, 96))
    assert p[:8].max() == 0.0  # 00:00–02:00 UTC
    assert p[88:].max() == 0.0  # 22:00–24:00 UTC
    peak_qh = int(p.argmax())
    assert 40 <= peak_qh <= 48  # solar noon in Kassel ≈ 11:20 UTC
    assert 6000 < p.max() <= 10_000


def test_summer_gives_more_than_winter_and_east_peaks_earlier() -> None:
    june = sum(clear_sky_power_w(KASSEL, JUNE, 96))
    dec = sum(clear_sky_power_w(KASSEL, DEC, 96))
    assert june > 2.5 * dec
    east = PvSite(51.3, 9.5, 10_000, tilt_deg=30, azimuth_deg=90)
    assert np.argmax(clear_sky_power_w(east, JUNE, 96)) < np.argmax(
        clear_sky_power_w(KASSEL, JUNE, 96)
    )


def test_a_cloudy_day_gives_its_ratio_and_night_keeps_it() -> None:
    yesterday = JUNE - timedelta(days=1)
    clear_yesterday = clear_sky_power_w(KASSEL, yesterday, 96)
    cloudy = [0.4 * v for v in clear_yesterday]
    assert measured_ratio(cloudy, clear_yesterday) == pytest.approx(0.4, rel=1e-9)
    night = clear_sky_power_w(KASSEL, JUNE, 4)  # 00:00–01:00 UTC: below 50 W
    assert measured_ratio([0.0] * 4, night, previous=0.4) == 0.4


@pytest.mark.parametrize(
    ("measured", "clear", "ratio"),
    [
        ([500.0, 1000.0], [1000.0, 1000.0], 0.75),
        ([math.nan, 1000.0], [1000.0, 1000.0], 1.0),  # unavailable values skipped
        ([0.0, 0.0], [10.0, 20.0], 1.0),  # only dawn: nothing to compare
        ([5000.0], [1000.0], 1.2),  # bounded
        ([49.0], [49.9], 1.0),  # below 50 W of clear sky: noise
        ([50.0], [50.0], 1.0),
        ([-5.0], [100.0], 0.0),  # bounded below
    ],
)
def test_measured_ratio(measured: list[float], clear: list[float], ratio: float) -> None:
    assert measured_ratio(measured, clear) == pytest.approx(ratio)


def test_a_curtailed_inverter_or_no_reading_keeps_the_previous_ratio() -> None:
    assert measured_ratio([300.0], [1000.0], previous=0.8, curtailed=True) == 0.8
    assert measured_ratio([math.nan], [1000.0], previous=0.8) == 0.8
    assert measured_ratio([300.0], [1000.0], previous=0.8) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="has 2 values"):
        measured_ratio([1.0, 2.0], [1.0])


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clear_sky_power_w(KASSEL, datetime(2026, 6, 1), 4)


@pytest.mark.parametrize("profile", list(LoadProfile))
def test_bdew_profile_scales_to_annual_consumption(profile: LoadProfile) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=1)  # local midnight
    week = bdew_load_w(profile, 3500, start, 96 * 7)
    energy_kwh = sum(week) * 0.25 / 1000
    # a winter week is about 1/52 of the year, more for PV/battery homes (S25, P25)
    assert 3500 / 52 * 0.5 < energy_kwh < 3500 / 52 * 3
    assert min(week) >= 0


def test_household_evening_is_higher_than_night() -> None:
    start = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)  # Wednesday 00:00 local (CET)
    day = bdew_load_w(LoadProfile.H25, 3500, start, 96)
    night = np.mean(day[12:16])  # 03:00–04:00 local
    evening = np.mean(day[72:80])  # 18:00–20:00 local
    assert evening > 2 * night


def test_holiday_is_treated_like_sunday() -> None:
    start = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)  # Wednesday 11 Nov 2026 local
    normal = bdew_load_w(LoadProfile.G25, 10_000, start, 96)
    holiday = bdew_load_w(LoadProfile.G25, 10_000, start, 96, holidays=[date(2026, 11, 11)])
    assert sum(holiday) < 0.8 * sum(normal)


def test_history_corrects_the_profile() -> None:
    recent = datetime(2026, 11, 3, 23, 0, tzinfo=UTC)
    past = bdew_load_w(LoadProfile.H25, 3500, recent, 96)
    heavier = [1.5 * v for v in past]
    assert history_factor(heavier, past) == pytest.approx(1.5, rel=1e-9)
    assert history_factor([math.nan, *heavier[1:]], past) == pytest.approx(1.5, rel=1e-9)
    assert history_factor([math.nan] * 3, [1.0] * 3) == 1.0
    assert history_factor([100.0], [1.0]) == 3.0  # bounded
    assert history_factor([0.0], [1.0]) == 0.3


@pytest.mark.parametrize(
    ("start", "n"),
    [
        (datetime(2026, 6, 21, 22, 0, tzinfo=UTC), 192),  # summer, two days
        (datetime(2026, 12, 31, 20, 0, tzinfo=UTC), 96),  # across the local new year
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), 96),  # the spring-forward night
    ],
)
def test_profile_cut_from_the_cached_year_equals_the_profile_of_the_window(
    start: datetime, n: int
) -> None:
    holidays = tuple(sorted(country_holidays("DE", subdiv="NW", years=range(2025, 2029))))
    for profile in (LoadProfile.H25, LoadProfile.G25):
        direct = np.asarray(
            bdew_load_w(profile, 1000.0, start, n, zone="Europe/Berlin", holidays=holidays)
        )
        cut = profile_window(profile, start, n, "Europe/Berlin", holidays)
        assert cut.shape == (n,)
        np.testing.assert_allclose(cut * 1000.0, direct, rtol=1e-12, atol=1e-9)
