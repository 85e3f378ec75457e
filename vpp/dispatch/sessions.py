"""When an EV charger or a storage heater may draw, in quarter-hours of the horizon.

A session is given in local wall times of the site's zone (a car arrives at 18:00 and leaves at
07:00; a heater's window opens at 22:00 and closes at 06:00); the dispatch plans in quarter-hour
indices from the horizon's start. The session in progress at the start, or else the next one
that begins inside the horizon, is the one planned. Arrival rounds up to the next quarter-hour,
departure down (the car must be full by then). A departure beyond the horizon leaves inside it
only what cannot be delivered afterwards at full power.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.quarterhours import QH, QH_S, TimeGridError, local_to_utc

_QH_H = QH_S / 3600.0


@dataclass(frozen=True, slots=True)
class Session:
    """A session as quarter-hour indices ``[from_qh, to_qh)`` of the horizon; ``begins`` is its
    start (UTC), which may lie before the horizon."""

    from_qh: int
    to_qh: int
    begins: datetime


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall time as UTC. A time in the spring-forward gap is read with the offset before
    the change (02:30 becomes 03:30 summer time), an ambiguous one as its first occurrence (a
    charging window is not worth refusing a day)."""
    wall = datetime.combine(day, at)
    try:
        return local_to_utc(wall, tz)
    except TimeGridError:
        return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def session(start: datetime, n_qh: int, begin: time, end: time, tz: ZoneInfo) -> Session | None:
    """The session in progress at ``start`` or the next one that begins inside the horizon of
    ``n_qh`` quarter-hours; None when there is none."""
    horizon_end = start + n_qh * QH
    today = start.astimezone(tz).date()
    for offset in range(-1, 3):
        day = today + timedelta(days=offset)
        begins = local_instant(day, begin, tz)
        ends = local_instant(day + timedelta(days=0 if end > begin else 1), end, tz)
        if ends <= start:
            continue
        if begins >= horizon_end:
            return None
        from_qh = max(0, -((start - begins) // QH))
        to_qh = (ends - start) // QH
        if to_qh > from_qh:
            return Session(from_qh, to_qh, begins)
    return None


def within_horizon(need_wh: float, max_power_w: float, s: Session, n_qh: int) -> float:
    """What must be delivered inside the horizon of ``n_qh`` quarter-hours (Wh) when the
    session ends after it: the need minus what full power can still deliver afterwards."""
    after_qh = max(0, s.to_qh - max(n_qh, s.from_qh))
    return max(0.0, need_wh - max_power_w * after_qh * _QH_H)
