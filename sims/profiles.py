"""Profiles that drive the simulated devices: household load and PV output over time.

* :class:`ClearSkyPv` -- AC output in W of a PV system (kWp, tilt, azimuth at a site's
  latitude/longitude) under a clear sky (pvlib, Ineichen model, plane-of-array irradiance),
  computed once per UTC day on a 5-minute grid and interpolated.
* :func:`cloud_factor` -- a smooth, deterministic factor in [0.15, 1] that dims the clear sky
  like passing clouds (seeded, so a test sees the same weather every run).
* :class:`HouseholdLoad` -- consumption in W following the BDEW 2025 household standard load
  profile H25 (demandlib), scaled to an annual consumption in kWh, read in local time
  (Europe/Berlin by default).

Everything is a function of the instant passed in; the profiles never read a clock.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

#: Share of plane-of-array power that reaches the AC side (inverter, wiring, temperature).
DEFAULT_DERATE = 0.85
_STEP_S = 300


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
            import pandas as pd
            import pvlib

            loc = pvlib.location.Location(self.lat, self.lon, tz="UTC", altitude=self.altitude_m)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            times = pd.date_range(start, periods=86400 // _STEP_S + 1, freq=f"{_STEP_S}s")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pvlib 0.16 on pandas 3.1: deprecations
                sky = loc.get_clearsky(times, model="ineichen", linke_turbidity=3.0)
                sun = loc.get_solarposition(times)
                poa = pvlib.irradiance.get_total_irradiance(
                    self.tilt_deg,
                    self.azimuth_deg,
                    sun["apparent_zenith"],
                    sun["azimuth"],
                    sky["dni"],
                    sky["ghi"],
                    sky["dhi"],
                )["poa_global"]
            curve = np.clip(np.nan_to_num(poa.to_numpy(dtype=float)), 0.0, None)
            curve = curve * self.kwp * self.derate  # W/m² × kWp / (1000 W/m²) × 1000 W/kW
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


@dataclass
class HouseholdLoad:
    """Household consumption in W: BDEW H25 scaled to ``annual_kwh``, in local ``tz``."""

    annual_kwh: float = 4000.0
    tz: str = "Europe/Berlin"
    _years: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def _year(self, year: int) -> np.ndarray:
        values = self._years.get(year)
        if values is None:
            import pandas as pd
            from demandlib.bdew import H25

            days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
            index = pd.date_range(f"{year}-01-01", periods=days * 96, freq="15min")
            # H25 is in kW for 1 GWh per year
            with warnings.catch_warnings():
                # demandlib 0.2.2 uses pandas' deprecated ``inplace=``; not our code to fix
                warnings.simplefilter("ignore")
                profile = H25(index)
            values = np.asarray(profile.to_numpy(dtype=float)) * (self.annual_kwh / 1000.0)
            self._years[year] = values
        return values

    def power_w(self, ts: datetime) -> float:
        """Mean consumption in W of the local quarter-hour containing ``ts``."""
        local = ts.astimezone(ZoneInfo(self.tz))
        values = self._year(local.year)
        start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        wall = local.replace(tzinfo=None) - start.replace(tzinfo=None)
        quarter = int(wall / timedelta(minutes=15))
        return float(values[min(quarter, len(values) - 1)])
