"""The quarter-hour grid: UTC instants on a 900 s raster, days and months in the site's zone.

Metering, dispatch and settlement all count in quarter-hours. A quarter-hour is identified by
its start instant in UTC (an aware ``datetime`` with ``tzinfo=UTC``) or, for array work, by its
*index*: whole quarter-hours since the Unix epoch (``int``). Both name the same thing; the index
is what the bulk settlement stores in ``int64`` arrays.

A local day in Europe/Berlin runs from local midnight to the next local midnight and therefore
has 96 quarter-hours, 92 on the last Sunday of March and 100 on the last Sunday of October.
Local midnight always exists in Berlin (the clocks jump at 02:00/03:00), but the functions do not
rely on that: every local wall-clock time is checked to exist and to be unambiguous before it is
turned into an instant, because ``zoneinfo`` silently accepts the non-existent 02:30 on the
spring-forward day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.errors import InputError

#: Length of one quarter-hour in seconds.
QH_S = 900
QH = timedelta(seconds=QH_S)
#: The default site zone.
BERLIN = ZoneInfo("Europe/Berlin")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimeGridError(InputError):
    """An instant or wall-clock time that cannot be placed on the quarter-hour grid."""

    def __init__(self, reason: str, field: str = "time") -> None:
        super().__init__(field, reason, reason)


def require_utc(ts: datetime, what: str = "timestamp") -> datetime:
    """Return ``ts`` converted to UTC; naive datetimes are refused (they have no instant)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise TimeGridError(f"{what} {ts.isoformat()} is naive; an aware UTC instant is required")
    return ts.astimezone(UTC)


def _epoch_us(ts: datetime) -> int:
    delta = require_utc(ts) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_us(ts: datetime) -> int:
    """Microseconds since the Unix epoch, exact (no float): the time axis of interpolation."""
    return _epoch_us(ts)


def qh_index(ts: datetime) -> int:
    """Index of the quarter-hour that contains ``ts`` (quarter-hours since the epoch)."""
    return _epoch_us(ts) // (QH_S * 1_000_000)


def qh_start(index: int) -> datetime:
    """UTC start instant of the quarter-hour with the given index."""
    return _EPOCH + timedelta(seconds=index * QH_S)


def is_qh_boundary(ts: datetime) -> bool:
    """True when ``ts`` is exactly the start of a quarter-hour."""
    return _epoch_us(ts) % (QH_S * 1_000_000) == 0


def floor_qh(ts: datetime) -> datetime:
    """Start of the quarter-hour containing ``ts`` (UTC)."""
    return qh_start(qh_index(ts))


def ceil_qh(ts: datetime) -> datetime:
    """The first quarter-hour boundary at or after ``ts`` (UTC)."""
    index = qh_index(ts)
    return qh_start(index if is_qh_boundary(ts) else index + 1)


def require_qh_boundary(ts: datetime, what: str = "interval start") -> datetime:
    """Return ``ts`` in UTC, refusing instants that are not a quarter-hour start."""
    utc = require_utc(ts, what)
    if not is_qh_boundary(utc):
        raise TimeGridError(f"{what} {utc.isoformat()} is not on a quarter-hour boundary")
    return utc


def local_to_utc(wall: datetime, tz: ZoneInfo = BERLIN) -> datetime:
    """Turn a naive local wall-clock time into a UTC instant, refusing gaps and overlaps.

    A time in the spring-forward gap does not exist; one in the autumn overlap exists twice.
    Both are refused rather than guessed, naming the wall-clock time and the zone.
    """
    if wall.tzinfo is not None:
        raise TimeGridError(f"local time {wall.isoformat()} must be naive (wall clock)")
    early = wall.replace(tzinfo=tz, fold=0)
    late = wall.replace(tzinfo=tz, fold=1)
    utc = early.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != wall:
        raise TimeGridError(f"{wall.isoformat()} does not exist in {tz.key} (clocks go forward)")
    if early.utcoffset() != late.utcoffset():
        raise TimeGridError(f"{wall.isoformat()} is ambiguous in {tz.key} (clocks go back)")
    return utc


def local_day_bounds(day: date, tz: ZoneInfo = BERLIN) -> tuple[datetime, datetime]:
    """UTC instants of the local midnight that starts ``day`` and the one that ends it."""
    start = local_to_utc(datetime.combine(day, time(0)), tz)
    end = local_to_utc(datetime.combine(day + timedelta(days=1), time(0)), tz)
    return start, end


def local_day_indices(day: date, tz: ZoneInfo = BERLIN) -> range:
    """Quarter-hour indices of a local day: 92, 96 or 100 of them in Europe/Berlin."""
    start, end = local_day_bounds(day, tz)
    return range(qh_index(start), qh_index(end))


def local_day_quarter_hours(day: date, tz: ZoneInfo = BERLIN) -> list[datetime]:
    """UTC start instants of every quarter-hour of a local day."""
    return [qh_start(i) for i in local_day_indices(day, tz)]


def quarter_hours_in_day(day: date, tz: ZoneInfo = BERLIN) -> int:
    """How many quarter-hours the local day has (92, 96 or 100 in Europe/Berlin)."""
    return len(local_day_indices(day, tz))


def local_month_bounds(year: int, month: int, tz: ZoneInfo = BERLIN) -> tuple[datetime, datetime]:
    """UTC instants of the local midnights that start and end a calendar month."""
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return local_to_utc(datetime.combine(first, time(0)), tz), local_to_utc(
        datetime.combine(nxt, time(0)), tz
    )


def local_day_of(ts: datetime, tz: ZoneInfo = BERLIN) -> date:
    """The local calendar day an instant (e.g. a quarter-hour start) belongs to."""
    return require_utc(ts).astimezone(tz).date()


def local_month_of(ts: datetime, tz: ZoneInfo = BERLIN) -> tuple[int, int]:
    """``(year, month)`` of the local calendar month an instant belongs to."""
    d = local_day_of(ts, tz)
    return d.year, d.month


def quarter_hours_between(start: datetime, end: datetime) -> range:
    """Indices of the quarter-hours in ``[start, end)``; both ends must be boundaries."""
    a = qh_index(require_qh_boundary(start, "period start"))
    b = qh_index(require_qh_boundary(end, "period end"))
    if b < a:
        raise TimeGridError(f"period end {end.isoformat()} is before start {start.isoformat()}")
    return range(a, b)
