"""Forecasts for the dispatch: PV from clear-sky irradiance, load from BDEW profiles, accuracy.

Pure: the caller passes the horizon (UTC start, quarter-hour count) and the recent measured
series; nothing here reads a clock or a file of its own (the libraries read their bundled
reference tables).
"""

from vpp.forecast.accuracy import AccuracyRow, ForecastRecord, forecast_accuracy
from vpp.forecast.load import LoadProfile, bdew_load_w, load_forecast_w
from vpp.forecast.pv import PvSite, clear_sky_power_w, pv_forecast_w, recent_ratio

__all__ = [
    "AccuracyRow",
    "ForecastRecord",
    "LoadProfile",
    "PvSite",
    "bdew_load_w",
    "clear_sky_power_w",
    "forecast_accuracy",
    "load_forecast_w",
    "pv_forecast_w",
    "recent_ratio",
]
