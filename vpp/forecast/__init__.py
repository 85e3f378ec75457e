"""Forecasts for the dispatch: PV from clear-sky irradiance, load from BDEW profiles.

Pure: the caller passes the horizon (UTC start, quarter-hour count) and the measured values;
nothing here reads a clock or a file of its own (the libraries read their bundled reference
tables).
"""

from vpp.forecast.load import LoadProfile, bdew_load_w, history_factor, profile_window
from vpp.forecast.pv import (
    MIN_CLEAR_SKY_W,
    RATIO_BOUNDS,
    PvSite,
    clear_sky_power_w,
    measured_ratio,
)

__all__ = [
    "MIN_CLEAR_SKY_W",
    "RATIO_BOUNDS",
    "LoadProfile",
    "PvSite",
    "bdew_load_w",
    "clear_sky_power_w",
    "history_factor",
    "measured_ratio",
    "profile_window",
]
