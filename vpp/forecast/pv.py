"""PV forecast: clear-sky output of each site and orientation, scaled by the recent ratio of
measured to clear-sky output (a cloudy week lowers tomorrow's expectation).

Irradiance from pvlib (Ineichen clear sky with a given Linke turbidity, so no lookup table is
read), transposed to the plane of the array; power ``= peak · POA / 1000 W/m² · performance``.
Mean power per quarter-hour from three samples at 2.5, 7.5 and 12.5 minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pvlib


@dataclass(frozen=True)
class PvSite:
    """Where a PV system is and how it faces.

    ``azimuth_deg``: 180 = south; ``tilt_deg``: 0 = flat. ``performance_ratio`` covers
    inverter, temperature and wiring losses (typically 0.8–0.9).
    """

    latitude_deg: float
    longitude_deg: float
    peak_power_w: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    altitude_m: float = 100.0
    performance_ratio: float = 0.85
    linke_turbidity: float = 3.0


def clear_sky_power_w(site: PvSite, start: datetime, n_qh: int) -> tuple[float, ...]:
    """Mean clear-sky AC power per quarter-hour from ``start`` (aware UTC), in W."""
    if start.tzinfo is None:
        raise ValueError(f"start must be timezone-aware (UTC), got {start!r}")
    first = pd.Timestamp(start).tz_convert("UTC") + pd.Timedelta(minutes=2.5)
    times = pd.date_range(first, periods=3 * n_qh, freq="5min")
    loc = pvlib.location.Location(site.latitude_deg, site.longitude_deg, "UTC", site.altitude_m)
    sky = loc.get_clearsky(times, model="ineichen", linke_turbidity=site.linke_turbidity)
    sun = loc.get_solarposition(times)
    poa = pvlib.irradiance.get_total_irradiance(
        site.tilt_deg,
        site.azimuth_deg,
        sun["apparent_zenith"],
        sun["azimuth"],
        sky["dni"],
        sky["ghi"],
        sky["dhi"],
    )["poa_global"]
    power = np.nan_to_num(poa.to_numpy(dtype=float)) / 1000.0 * site.peak_power_w
    power = np.clip(power * site.performance_ratio, 0.0, site.peak_power_w)
    return tuple(float(v) for v in power.reshape(n_qh, 3).mean(axis=1))


def recent_ratio(
    measured_w: Sequence[float],
    clear_sky_w: Sequence[float],
    *,
    min_clear_sky_w: float = 50.0,
    bounds: tuple[float, float] = (0.0, 1.2),
) -> float:
    """Energy-weighted ratio of measured to clear-sky output over the recent past.

    Only quarter-hours with at least ``min_clear_sky_w`` of clear-sky power count (dawn and
    dusk are noise); NaN measurements (unavailable) are skipped. With nothing to compare, 1.
    """
    m = np.asarray(measured_w, dtype=float)
    c = np.asarray(clear_sky_w, dtype=float)
    if m.shape != c.shape:
        raise ValueError(f"measured has {m.size} values, clear sky has {c.size}")
    use = (c >= min_clear_sky_w) & np.isfinite(m)
    if not use.any() or c[use].sum() <= 0:
        return 1.0
    return float(np.clip(m[use].sum() / c[use].sum(), *bounds))


def pv_forecast_w(
    site: PvSite,
    start: datetime,
    n_qh: int,
    recent_measured_w: Sequence[float] = (),
    recent_start: datetime | None = None,
) -> tuple[float, ...]:
    """Clear-sky power for the horizon, scaled by the ratio seen in the recent measurements.

    ``recent_measured_w`` are quarter-hour means from ``recent_start`` on (e.g. the last three
    days); without them the forecast is the clear-sky output.
    """
    clear = np.asarray(clear_sky_power_w(site, start, n_qh))
    if not recent_measured_w or recent_start is None:
        return tuple(float(v) for v in clear)
    past = clear_sky_power_w(site, recent_start, len(recent_measured_w))
    ratio = recent_ratio(recent_measured_w, past)
    return tuple(float(v) for v in clear * ratio)
