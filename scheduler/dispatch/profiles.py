"""BDEW profiles for one round: the horizon and the history window, per 1 kWh a year.

The site's holidays (its federal state, ``site.state``) are data of the site, taken from the
``holidays`` package for the years the round touches; the profile itself is cut from whole
years cached per process (:func:`vpp.forecast.load.profile_window`). :meth:`Profiles.warm`
computes missing years and is meant for a worker thread (demandlib builds pandas series).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import holidays as holiday_tables
import numpy as np
import numpy.typing as npt

from kernel.quarterhours import QH
from vpp.forecast import LoadProfile, profile_window


class Profiles:
    """The profiles of one round's horizon (``n`` quarter-hours from ``start``) and of the
    ``history_qh`` quarter-hours before it, in W per 1 kWh a year."""

    def __init__(self, tz: ZoneInfo, state: str, start: datetime, n: int, history_qh: int) -> None:
        self._zone = tz.key
        self._start = start
        self._n = n
        self._history_qh = history_qh
        first = start - history_qh * QH
        years = range(first.year - 1, (start + n * QH).year + 2)
        self._holidays = tuple(
            sorted(holiday_tables.country_holidays("DE", subdiv=state, years=years))
        )
        self._cache: dict[tuple[LoadProfile, bool], npt.NDArray[np.float64]] = {}

    def warm(self, profiles: Sequence[LoadProfile]) -> None:
        """Compute every window this round will ask for (slow the first time in a process)."""
        for profile in profiles:
            self._get(profile, past=False)
            if self._history_qh:
                self._get(profile, past=True)

    def _get(self, profile: LoadProfile, past: bool) -> npt.NDArray[np.float64]:
        key = (profile, past)
        if key not in self._cache:
            start = self._start - self._history_qh * QH if past else self._start
            n = self._history_qh if past else self._n
            self._cache[key] = profile_window(profile, start, n, self._zone, self._holidays)
        return self._cache[key]

    def horizon(self, profile: LoadProfile) -> npt.NDArray[np.float64]:
        return self._get(profile, past=False)

    def history(self, profile: LoadProfile) -> npt.NDArray[np.float64]:
        return self._get(profile, past=True)
