"""The lighting load forecast for the dispatch: mean power in W per quarter-hour of a day.

The municipal member of the energy-sharing community owns the street lighting; the dispatch
needs its expected load for the coming day. A local day has 92, 96 or 100 quarter-hours; the
quarter-hours are cut in UTC from local midnight to local midnight, so DST days come out
right. The forecast assumes the design class (no traffic lowering, i.e. an upper bound for
adaptive segments) with the floor applied, as the nodes would run alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from kernel.quarterhours import QH
from lighting.energy import energy_per_interval, load_of
from lighting.program import level_curve
from lighting.schedule import Programs, effective_night, resolve_segment_night
from lighting.site import LightingIndex
from lighting.sun import zone


@dataclass(frozen=True, slots=True)
class LoadForecast:
    """``power_w[i]`` is the mean power in W over ``[starts[i], starts[i] + 15 min)`` (UTC)."""

    day: date
    starts: tuple[datetime, ...]
    power_w: tuple[float, ...]

    @property
    def energy_wh(self) -> float:
        return sum(self.power_w) * 0.25


def quarter_hours(day: date, timezone: str = "Europe/Berlin") -> list[datetime]:
    """UTC starts of the quarter-hours of local ``day`` (92, 96 or 100 of them)."""
    tz = zone(timezone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    count = int((end - start) / QH)
    return [start + i * QH for i in range(count)]


def lighting_load_forecast(
    index: LightingIndex, programs: Programs, day: date, timezone: str = "Europe/Berlin"
) -> LoadForecast:
    """Mean lighting power per quarter-hour of local ``day`` over every segment: the morning
    of the night before and the evening of the night of ``day``."""
    starts = quarter_hours(day, timezone)
    edges = [*starts, starts[-1] + QH]
    power = [0.0] * len(starts)
    for sid, segment in index.segments.items():
        load = load_of(index.by_segment[sid])
        if load.count == 0:
            continue
        for night in (day - timedelta(days=1), day):
            resolved = effective_night(
                resolve_segment_night(segment, programs, night), segment.classing
            )
            per_qh = energy_per_interval(level_curve(resolved), load, edges)
            for i, wh in enumerate(per_qh):
                power[i] += wh * 4.0
    return LoadForecast(day, tuple(starts), tuple(power))
