"""What the e2e tests check against: meter counters, stored intervals and statements.

Written from the metering rule of ``docs``/``vpp.metering.intervals`` (a quarter-hour boundary
takes the reading there or the linear interpolation between the readings either side, on
whole-Wh counter values, rounded down on microseconds), independently of that module, so the
day test checks the metering and settlement jobs against the raw meter readings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kernel.readings import Quality, Reading
from store import Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(ts: datetime) -> int:
    return (ts.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def counter_at(readings: list[Reading], at: datetime, *, whole_wh: bool = True) -> float:
    """The counter at ``at``: the reading there, else the linear interpolation between the
    readings either side. ``whole_wh``: on readings rounded to Wh, result rounded down (the
    metering rule, exact integers); else on the raw float readings (the meter's own counter,
    which grows linearly between two requests: it holds the power it last measured)."""
    good = [r for r in readings if r.value is not None and r.quality is not Quality.UNAVAILABLE]
    good.sort(key=lambda r: r.ts)
    t = _us(at)
    before = [r for r in good if _us(r.ts) <= t]
    after = [r for r in good if _us(r.ts) >= t]
    if not before or not after:
        raise AssertionError(f"no readings on both sides of {at.isoformat()}")
    a, b = before[-1], after[0]
    assert a.value is not None
    assert b.value is not None
    ta, tb = _us(a.ts), _us(b.ts)
    if whole_wh:
        va, vb = round(a.value), round(b.value)
        if ta == tb:
            return va
        return va + ((vb - va) * (t - ta)) // (tb - ta)
    if ta == tb:
        return a.value
    return a.value + (b.value - a.value) * (t - ta) / (tb - ta)


async def stored_counter_readings(
    store: Store, device: str, channel: str, start: datetime, end: datetime
) -> list[Reading]:
    """A meter channel's raw readings in ``[start − 1 h, end + 1 h]``."""
    return await store.readings.between(
        device, channel, start - timedelta(hours=1), end + timedelta(hours=1)
    )


async def interval_sum(
    store: Store, member: str, channel: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """Σ Wh of the newest stored intervals of ``member``/``channel`` in ``[start, end)`` and
    how many quarter-hours they cover."""
    rows = await store.intervals.for_member(member, start, end, channel)
    total = sum(int(r.interval.energy_wh) for r in rows)
    return total, len(rows)


def as_int(value: Decimal) -> int:
    if value != value.to_integral_value():
        raise AssertionError(f"{value} is not a whole Wh")
    return int(value)


__all__ = ["as_int", "counter_at", "interval_sum", "stored_counter_readings"]
