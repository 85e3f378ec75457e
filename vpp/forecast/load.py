"""Load forecast: the BDEW standard load profiles (2025 revision, ``demandlib``) scaled to the
member's annual consumption (:func:`profile_window`, cut from whole years cached per process)
and corrected with the member's own recent history (:func:`history_factor`).

H25 households, G25 business, P25 households with PV, S25 households with a battery. The
profiles are defined on local clock time (Europe/Berlin by default) with holidays treated as
Sundays; the caller passes the holidays (e.g. from the ``holidays`` package) because they are
data of the site.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from demandlib import bdew

from kernel.errors import InputError
from kernel.quarterhours import QH


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
        raise InputError("start", f"must be timezone-aware (UTC), got {start!r}")
    if annual_kwh < 0:
        raise InputError("annual_kwh", f"must be ≥ 0, got {annual_kwh}")
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
        raise InputError("measured_w", f"has {m.size} values, the profile has {p.size}")
    use = np.isfinite(m)
    if not use.any() or p[use].sum() <= 0:
        return 1.0
    return float(np.clip(m[use].sum() / p[use].sum(), *bounds))


@functools.lru_cache(maxsize=32)
def _year_per_kwh(
    profile: LoadProfile, year: int, zone: str, holidays: tuple[date, ...]
) -> tuple[datetime, npt.NDArray[np.float64]]:
    """A whole local year of ``profile`` per 1 kWh a year (W per quarter-hour), from the
    year's first local midnight (UTC). Computed once per process: demandlib builds a pandas
    series per call (0.05–0.25 s), too slow for every dispatch round."""
    tz = ZoneInfo(zone)
    first = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    n = int((end - first) / QH)
    series = np.asarray(bdew_load_w(profile, 1000.0, first, n, zone=zone, holidays=holidays))
    series = series / 1000.0
    series.setflags(write=False)
    return first, series


def profile_window(
    profile: LoadProfile, start: datetime, n_qh: int, zone: str, holidays: tuple[date, ...]
) -> npt.NDArray[np.float64]:
    """``n_qh`` quarter-hours of ``profile`` per 1 kWh a year (W) from ``start`` (UTC), cut
    from the cached local years it spans: equal to :func:`bdew_load_w` of the window alone
    (scaled to 1 kWh), at a slice's cost once the years are cached."""
    tz = ZoneInfo(zone)
    end = start + n_qh * QH
    parts: list[npt.NDArray[np.float64]] = []
    for year in range(start.astimezone(tz).year, (end - QH).astimezone(tz).year + 1):
        first, series = _year_per_kwh(profile, year, zone, holidays)
        lo = max(0, int((start - first) / QH))
        hi = min(len(series), int((end - first) / QH))
        if hi > lo:
            parts.append(series[lo:hi])
    window = np.concatenate(parts) if parts else np.zeros(0)
    if len(window) != n_qh:
        raise InputError("n_qh", f"profile window of {len(window)} quarter-hours, wanted {n_qh}")
    return window
