"""Load forecast: the BDEW standard load profiles (2025 revision, ``demandlib``) scaled to the
member's annual consumption and corrected with the member's own recent history.

H25 households, G25 business, P25 households with PV, S25 households with a battery. The
profiles are defined on local clock time (Europe/Berlin by default) with holidays treated as
Sundays; the caller passes the holidays (e.g. from the ``holidays`` package) because they are
data of the site.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd
from demandlib import bdew


class LoadProfile(enum.Enum):
    H25 = "H25"
    G25 = "G25"
    P25 = "P25"
    S25 = "S25"


#: demandlib scales every profile to 1 GWh (1e6 kWh) a year, in kW.
_PROFILE_ANNUAL_KWH = 1e6


def bdew_load_w(
    profile: LoadProfile,
    annual_kwh: float,
    start: datetime,
    n_qh: int,
    *,
    zone: str = "Europe/Berlin",
    holidays: Sequence[date] = (),
) -> tuple[float, ...]:
    """Mean power per quarter-hour in W for a consumer of ``annual_kwh`` from ``start`` (UTC)."""
    if start.tzinfo is None:
        raise ValueError(f"start must be timezone-aware (UTC), got {start!r}")
    if annual_kwh < 0:
        raise ValueError(f"annual_kwh must be ≥ 0, got {annual_kwh}")
    index = pd.date_range(pd.Timestamp(start).tz_convert(zone), periods=n_qh, freq="15min")
    cls = getattr(bdew, profile.value)
    series = cls(index, holidays=list(holidays) or None)
    kw = series.to_numpy(dtype=float) * annual_kwh / _PROFILE_ANNUAL_KWH
    return tuple(float(v) * 1000.0 for v in kw)


def history_factor(
    measured_w: Sequence[float],
    profile_w: Sequence[float],
    *,
    bounds: tuple[float, float] = (0.3, 3.0),
) -> float:
    """How much this member consumed relative to its profile recently (energy ratio).

    NaN measurements are skipped; with nothing usable the factor is 1. Bounded so that one odd
    week (holiday, party) cannot multiply the forecast by ten.
    """
    m = np.asarray(measured_w, dtype=float)
    p = np.asarray(profile_w, dtype=float)
    if m.shape != p.shape:
        raise ValueError(f"measured has {m.size} values, profile has {p.size}")
    use = np.isfinite(m)
    if not use.any() or p[use].sum() <= 0:
        return 1.0
    return float(np.clip(m[use].sum() / p[use].sum(), *bounds))


def load_forecast_w(
    profile: LoadProfile,
    annual_kwh: float,
    start: datetime,
    n_qh: int,
    recent_measured_w: Sequence[float] = (),
    recent_start: datetime | None = None,
    *,
    zone: str = "Europe/Berlin",
    holidays: Sequence[date] = (),
) -> tuple[float, ...]:
    """The profile for the horizon, scaled by the member's recent ratio to the same profile."""
    base = np.asarray(bdew_load_w(profile, annual_kwh, start, n_qh, zone=zone, holidays=holidays))
    if not recent_measured_w or recent_start is None:
        return tuple(float(v) for v in base)
    past = bdew_load_w(
        profile, annual_kwh, recent_start, len(recent_measured_w), zone=zone, holidays=holidays
    )
    factor = history_factor(recent_measured_w, past)
    return tuple(float(v) for v in base * factor)
