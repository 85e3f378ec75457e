"""PV forecast: clear-sky output of each site and orientation, scaled by the ratio of measured
to clear-sky output (:func:`measured_ratio`: the dispatch keeps one ratio per PV system and
renews it from every daylight reading of an inverter the plan does not curtail).

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

from kernel.errors import InputError


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
        raise InputError("start", f"must be timezone-aware (UTC), got {start!r}")
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


#: Below this clear-sky power (W) a measured/clear-sky ratio is noise (dawn, dusk, night).
MIN_CLEAR_SKY_W = 50.0
#: The measured/clear-sky ratio is kept inside these bounds.
RATIO_BOUNDS = (0.0, 1.2)


def measured_ratio(
    measured_w: Sequence[float],
    clear_sky_w: Sequence[float],
    *,
    previous: float = 1.0,
    curtailed: bool = False,
) -> float:
    """Energy-weighted ratio of measured to clear-sky output, inside :data:`RATIO_BOUNDS`.

    Only samples with at least :data:`MIN_CLEAR_SKY_W` of clear-sky power count, and NaN
    measurements (unavailable) are skipped. With nothing to compare (night, no reading), or
    while the plan ``curtailed`` the inverter (a limited inverter says nothing about the sky),
    the ``previous`` ratio holds.
    """
    m = np.asarray(measured_w, dtype=float)
    c = np.asarray(clear_sky_w, dtype=float)
    if m.shape != c.shape:
        raise InputError("measured_w", f"has {m.size} values, clear sky has {c.size}")
    use = (c >= MIN_CLEAR_SKY_W) & np.isfinite(m)
    if curtailed or not use.any():
        return previous
    return float(np.clip(m[use].sum() / c[use].sum(), *RATIO_BOUNDS))
