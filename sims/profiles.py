"""Profiles that drive the simulated devices: household load and PV output over time.

* :class:`ClearSkyPv` -- AC output in W of a PV system (kWp, tilt, azimuth at a site's
  latitude/longitude) under a clear sky (pvlib, Ineichen model, plane-of-array irradiance),
  computed once per UTC day on a 5-minute grid and interpolated.
* :func:`cloud_factor` -- a smooth, deterministic factor in [0.15, 1] that dims the clear sky
  like passing clouds (seeded, so a test sees the same weather every run).
* :class:`HouseholdLoad` -- consumption in W following a BDEW 2025 standard load profile
  (demandlib; H25 households by default, G25 for a school), scaled to an annual consumption in
  kWh, read in local time (Europe/Berlin by default).

Profiles and clear-sky curves are computed once per year / day and orientation and shared by
every simulated system, so a town of 60 roofs starts and turns midnight without a stall.

Everything is a function of the instant passed in; the profiles never read a clock.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from kernel.quarterhours import QH

#: Share of plane-of-array power that reaches the AC side (inverter, wiring, temperature).
DEFAULT_DERATE = 0.85
_STEP_S = 300


@lru_cache(maxsize=64)
def _clear_sky_per_kwp(
    lat: float, lon: float, tilt_deg: float, azimuth_deg: float, altitude_m: float, day: date
) -> np.ndarray:
    """Clear-sky plane-of-array power of 1 kWp before derating (W), on the 5-minute grid of a
    UTC day. Shared by every system of the same orientation: a town of 60 roofs computes a few
    curves per day, not 60 (pvlib takes ~20 ms per curve, which would stall the event loop)."""
    import pandas as pd
    import pvlib

    loc = pvlib.location.Location(lat, lon, tz="UTC", altitude=altitude_m)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    times = pd.date_range(start, periods=86400 // _STEP_S + 1, freq=f"{_STEP_S}s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pvlib 0.16 on pandas 3.1: deprecations
        sky = loc.get_clearsky(times, model="ineichen", linke_turbidity=3.0)
        sun = loc.get_solarposition(times)
        poa = pvlib.irradiance.get_total_irradiance(
            tilt_deg,
            azimuth_deg,
            sun["apparent_zenith"],
            sun["azimuth"],
            sky["dni"],
            sky["ghi"],
            sky["dhi"],
        )["poa_global"]
    curve: np.ndarray = np.clip(np.nan_to_num(poa.to_numpy(dtype=float)), 0.0, None)
    curve.setflags(write=False)
    return curve  # W/m² on the plane = W per kWp (rated at 1000 W/m²)


@dataclass
class ClearSkyPv:
    """Clear-sky AC output in W of ``kwp`` kWp at ``lat``/``lon`` facing ``azimuth_deg``
    (180 = south) tilted ``tilt_deg``."""

    lat: float = 49.01
    lon: float = 8.40
    kwp: float = 10.0
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    altitude_m: float = 115.0
    derate: float = DEFAULT_DERATE
    _days: dict[date, np.ndarray] = field(default_factory=dict, repr=False)

    def _day(self, day: date) -> np.ndarray:
        curve = self._days.get(day)
        if curve is None:
            base = _clear_sky_per_kwp(
                self.lat, self.lon, self.tilt_deg, self.azimuth_deg, self.altitude_m, day
            )
            curve = base * self.kwp * self.derate
            if len(self._days) > 8:
                self._days.clear()
            self._days[day] = curve
        return curve

    def power_w(self, ts: datetime) -> float:
        """Clear-sky AC power in W at instant ``ts`` (aware)."""
        ts = ts.astimezone(UTC)
        curve = self._day(ts.date())
        seconds = ts.hour * 3600 + ts.minute * 60 + ts.second + ts.microsecond / 1e6
        i = int(seconds // _STEP_S)
        frac = (seconds - i * _STEP_S) / _STEP_S
        return float(curve[i] * (1 - frac) + curve[min(i + 1, len(curve) - 1)] * frac)


@cache
def _phases(seed: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.random.default_rng(seed).uniform(0, 2 * math.pi, 4))


def cloud_factor(ts: datetime, seed: int = 0) -> float:
    """A smooth cloudiness factor in [0.15, 1] at ``ts``: sums of slow sines with seeded
    phases (periods 7 min to 3 h), so clouds come and go but a run is reproducible."""
    t = ts.timestamp()
    phases = _phases(seed)
    periods = (420.0, 1500.0, 4200.0, 10800.0)
    s = sum(math.sin(2 * math.pi * t / p + ph) for p, ph in zip(periods, phases, strict=True))
    clear = 0.5 + 0.5 * math.tanh(s)  # 0..1, mostly near the ends: sun or cloud
    return 0.15 + 0.85 * clear


#: BDEW 2025 standard load profiles a simulated consumer can follow (demandlib classes).
LoadProfile = Literal["H25", "G25", "P25", "S25"]


@lru_cache(maxsize=8)
def _standard_year(profile: LoadProfile, year: int) -> np.ndarray:
    """The BDEW ``profile`` of ``year`` in W per kWh of annual consumption, per local
    quarter-hour (computed once per profile and year, shared by every consumer)."""
    import pandas as pd
    from demandlib import bdew

    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    index = pd.date_range(f"{year}-01-01", periods=days * 96, freq="15min")
    # the profiles are in kW for 1 GWh per year = W for 1 MWh = W/1000 per kWh
    with warnings.catch_warnings():
        # demandlib 0.2.2 uses pandas' deprecated ``inplace=``; not our code to fix
        warnings.simplefilter("ignore")
        series = getattr(bdew, profile)(index)
    values = np.asarray(series.to_numpy(dtype=float)) / 1000.0
    values.setflags(write=False)
    return values


@dataclass
class HouseholdLoad:
    """Consumption in W: a BDEW 2025 profile (H25 households, G25 businesses and schools …)
    scaled to ``annual_kwh``, in local ``tz``."""

    annual_kwh: float = 4000.0
    tz: str = "Europe/Berlin"
    profile: LoadProfile = "H25"

    def power_w(self, ts: datetime) -> float:
        """Mean consumption in W of the local quarter-hour containing ``ts``."""
        local = ts.astimezone(ZoneInfo(self.tz))
        values = _standard_year(self.profile, local.year)
        start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        wall = local.replace(tzinfo=None) - start.replace(tzinfo=None)
        quarter = int(wall / QH)
        return float(values[min(quarter, len(values) - 1)]) * self.annual_kwh
