"""The ``resolution``, ``start`` and ``end`` query parameters of the balance views.

``start`` and ``end`` are local calendar days (the site's time zone), ``end`` exclusive.
Defaults (by the service clock): today for quarter-hours, this month for days, this year for
months. Longest ranges: 31 days of quarter-hours, 400 days of days, 10 years of
months — beyond that a 422 names ``query.end``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Query
from pydantic import AwareDatetime

from api.deps import ClockDep, State
from api.errors import bad_field
from vpp.settlement.balances import Resolution, local_midnight

#: Longest ``since``..``until`` range of the operator lists, in days.
MAX_RANGE_DAYS = 92
MAX_DAYS = {Resolution.QUARTER_HOUR: 31, Resolution.DAY: 400, Resolution.MONTH: 3660}


@dataclass(frozen=True, slots=True)
class PeriodQuery:
    resolution: Resolution
    start: date
    end: date
    tz: ZoneInfo

    @property
    def start_utc(self) -> datetime:
        return local_midnight(self.start, self.tz)

    @property
    def end_utc(self) -> datetime:
        return local_midnight(self.end, self.tz)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


async def period_query(
    state: State,
    resolution: Annotated[
        Resolution, Query(description="quarter_hour, day or month")
    ] = Resolution.DAY,
    start: Annotated[date | None, Query(description="first local day (YYYY-MM-DD)")] = None,
    end: Annotated[date | None, Query(description="local day after the last")] = None,
) -> PeriodQuery:
    tz = ZoneInfo(state.settings.timezone)
    today = state.clock.now().astimezone(tz).date()
    if start is None:
        if resolution is Resolution.QUARTER_HOUR:
            start = today if end is None else end - timedelta(days=1)
        elif resolution is Resolution.DAY:
            start = today.replace(day=1)
        else:
            start = today.replace(month=1, day=1)
    if end is None:
        if resolution is Resolution.QUARTER_HOUR:
            end = start + timedelta(days=1)
        elif resolution is Resolution.DAY:
            end = _next_month(start)
        else:
            end = date(start.year + 1, start.month, 1)
    if end <= start:
        raise bad_field("query.end", "must be after start")
    if (end - start).days > MAX_DAYS[resolution]:
        raise bad_field(
            "query.end",
            f"at most {MAX_DAYS[resolution]} days at resolution {resolution.value}",
        )
    return PeriodQuery(resolution, start, end, tz)


Period = Annotated[PeriodQuery, Depends(period_query)]


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime


def range_query(
    back: timedelta = timedelta(hours=24), ahead: timedelta = timedelta(hours=24)
) -> Callable[..., Coroutine[Any, Any, TimeRange]]:
    """A ``since``/``until`` dependency defaulting to ``[now - back, now + ahead)``."""

    async def time_range(
        clock: ClockDep,
        since: Annotated[
            AwareDatetime | None,
            Query(description="from this instant (ISO 8601 with offset)"),
        ] = None,
        until: Annotated[
            AwareDatetime | None,
            Query(description="to this instant, exclusive"),
        ] = None,
    ) -> TimeRange:
        now = clock.now()
        start = since if since is not None else now - back
        end = until if until is not None else now + ahead
        if end <= start:
            raise bad_field("query.until", "must be after since")
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise bad_field("query.until", f"at most {MAX_RANGE_DAYS} days after since")
        return TimeRange(start.astimezone(UTC), end.astimezone(UTC))

    return time_range


#: since/until, by default the 24 h before and after now.
Range = Annotated[TimeRange, Depends(range_query())]
#: since/until, by default the last 31 days (and tomorrow).
MonthRange = Annotated[TimeRange, Depends(range_query(timedelta(days=31), timedelta(days=1)))]

__all__ = [
    "MAX_DAYS",
    "MonthRange",
    "Period",
    "PeriodQuery",
    "Range",
    "TimeRange",
    "period_query",
    "range_query",
]
