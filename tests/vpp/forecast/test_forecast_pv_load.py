"""PV and load forecasts: physical shape, scaling, corrections; accuracy figures."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from vpp.forecast import (
    ForecastRecord,
    LoadProfile,
    PvSite,
    bdew_load_w,
    clear_sky_power_w,
    forecast_accuracy,
    load_forecast_w,
    pv_forecast_w,
    recent_ratio,
)
from vpp.forecast.load import history_factor

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


def test_recent_cloudiness_scales_the_forecast() -> None:
    yesterday = JUNE - timedelta(days=1)
    clear_yesterday = clear_sky_power_w(KASSEL, yesterday, 96)
    cloudy = [0.4 * v for v in clear_yesterday]
    fc = pv_forecast_w(KASSEL, JUNE, 96, cloudy, yesterday)
    clear = clear_sky_power_w(KASSEL, JUNE, 96)
    assert sum(fc) == pytest.approx(0.4 * sum(clear), rel=1e-6)


@pytest.mark.parametrize(
    ("measured", "clear", "ratio"),
    [
        ([500.0, 1000.0], [1000.0, 1000.0], 0.75),
        ([math.nan, 1000.0], [1000.0, 1000.0], 1.0),  # unavailable values skipped
        ([0.0, 0.0], [10.0, 20.0], 1.0),  # only dawn: nothing to compare
        ([5000.0], [1000.0], 1.2),  # bounded
    ],
)
def test_recent_ratio(measured: list[float], clear: list[float], ratio: float) -> None:
    assert recent_ratio(measured, clear) == pytest.approx(ratio)


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
    fc = load_forecast_w(LoadProfile.H25, 3500, recent + timedelta(days=7), 96, heavier, recent)
    base = bdew_load_w(LoadProfile.H25, 3500, recent + timedelta(days=7), 96)
    assert sum(fc) == pytest.approx(1.5 * sum(base), rel=1e-9)
    assert history_factor([math.nan] * 3, [1.0] * 3) == 1.0
    assert history_factor([100.0], [1.0]) == 3.0


def test_accuracy_per_member_and_lead_time() -> None:
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    qh = timedelta(minutes=15)
    records = [
        ForecastRecord("a", t0, t0 + qh, 1000, 800),  # lead 1, +200
        ForecastRecord("a", t0, t0 + qh, 1000, 1100),  # lead 1, -100
        ForecastRecord("a", t0, t0 + 8 * qh, 500, 500),  # lead 8, 0
        ForecastRecord("b", t0, t0 + qh, 100, math.nan),  # unavailable: skipped
        ForecastRecord("b", t0, t0 + 2 * qh, 100, 300),  # lead 2, -200
    ]
    rows = {(r.member_id, r.horizon_qh): r for r in forecast_accuracy(records)}
    assert set(rows) == {("a", 1), ("a", 8), ("b", 2)}
    assert (rows[("a", 1)].n, rows[("a", 1)].mae_w, rows[("a", 1)].bias_w) == (2, 150, 50)
    assert rows[("b", 2)].bias_w == -200
    bucketed = forecast_accuracy(records, horizon_buckets_qh=(4, 96))
    assert [(r.member_id, r.horizon_qh, r.n) for r in bucketed] == [
        ("a", 4, 2),
        ("a", 96, 1),
        ("b", 4, 1),
    ]
