"""Nights for segments and nodes: calendar → program → resolved steps.

The runtime resolves each segment's night once (at noon, or when the configuration changes)
and hands the result to :func:`lighting.tick.decide_tick`. The node schedule is the same
night with the segment's floor applied at the design class (a node alone knows no traffic):
it is what gets pushed, retained, to every node of the segment for the coming nights,
together with the fallback level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from lighting.calendar import Calendar, choose_program
from lighting.classes import Classing, floor_pct
from lighting.errors import LightingInputError, check_level_pct
from lighting.program import Program, ResolvedNight, ResolvedStep, resolve_night
from lighting.site import LightingIndex, Segment
from lighting.sun import night_of, zone


@dataclass(frozen=True, slots=True)
class Programs:
    """Programs and calendars by name, checked against each other."""

    programs: Mapping[str, Program]
    calendars: Mapping[str, Calendar]

    def __post_init__(self) -> None:
        for name, program in self.programs.items():
            if program.name != name:
                raise LightingInputError(f"programs.{name}", f"holds program {program.name!r}")
        for name, cal in self.calendars.items():
            refs = [(f"rules[{i}].program", r.program) for i, r in enumerate(cal.rules)]
            refs.append(("default_program", cal.default_program))
            for where, ref in refs:
                if ref not in self.programs:
                    raise LightingInputError(
                        f"calendar {name!r}.{where}", f"unknown program {ref!r}"
                    )


def resolve_segment_night(segment: Segment, programs: Programs, night: date) -> ResolvedNight:
    """The segment's program for ``night`` (chosen by its calendar) with concrete steps."""
    calendar = programs.calendars.get(segment.calendar)
    if calendar is None:
        raise LightingInputError(
            f"segment {segment.segment_id!r}.calendar", f"unknown calendar {segment.calendar!r}"
        )
    choice = choose_program(calendar, night)
    return resolve_night(programs.programs[choice.program], segment.place, night, choice.rule)


def resolve_segment_nights(
    segment: Segment, programs: Programs, first_night: date, count: int
) -> tuple[ResolvedNight, ...]:
    """``count`` consecutive nights from ``first_night`` (the coming nights for a node)."""
    return tuple(
        resolve_segment_night(segment, programs, first_night + timedelta(days=k))
        for k in range(count)
    )


def nights_covering(
    index: LightingIndex,
    programs: Programs,
    now: datetime,
    previous: Mapping[str, ResolvedNight] | None = None,
) -> dict[str, ResolvedNight]:
    """Each segment's resolved night covering ``now``, reusing ``previous`` entries that
    still cover it (so the runtime resolves anchors once per night, not once per tick)."""
    out: dict[str, ResolvedNight] = {}
    for sid, segment in index.segments.items():
        old = previous.get(sid) if previous is not None else None
        if old is not None and old.start <= now < old.end:
            out[sid] = old
        else:
            night = night_of(now, zone(segment.timezone))
            out[sid] = resolve_segment_night(segment, programs, night)
    return out


def floored_level(classing: Classing, level_pct: float) -> float:
    """A program level with the segment's floor applied (0 % stays off)."""
    if level_pct <= 0.0:
        return 0.0
    return min(100.0, max(level_pct, floor_pct(classing)))


def effective_night(resolved: ResolvedNight, classing: Classing) -> ResolvedNight:
    """The night at the design class with the floor applied to every lit step."""
    steps = tuple(
        replace(s, level_pct=floored_level(classing, s.level_pct)) for s in resolved.steps
    )
    return replace(resolved, steps=steps)


@dataclass(frozen=True, slots=True)
class NodeSchedule:
    """What a node stores to run alone: the coming nights' steps, the level to use when it
    has no schedule for the current instant (``fallback_level_pct``) and the silence in s
    after which it stops waiting for the controller (``controller_timeout_s``)."""

    segment_id: str
    nights: tuple[ResolvedNight, ...]
    fallback_level_pct: float
    controller_timeout_s: float

    @property
    def steps(self) -> tuple[ResolvedStep, ...]:
        """All nights' steps in time order: the ``steps`` of the retained schedule message."""
        return tuple(step for night in self.nights for step in night.steps)

    @property
    def valid_until(self) -> datetime:
        """End of the last night (local noon): after it a node uses the fallback level."""
        return self.nights[-1].end


def node_schedule(
    segment: Segment,
    programs: Programs,
    first_night: date,
    count: int = 3,
    fallback_level_pct: float = 100.0,
    controller_timeout_s: float = 900.0,
) -> NodeSchedule:
    """The retained schedule for the nodes of ``segment`` (industry default fallback 100 %)."""
    check_level_pct(f"segment {segment.segment_id!r}.fallback_level_pct", fallback_level_pct)
    if count < 1:
        raise LightingInputError(f"segment {segment.segment_id!r}.schedule_nights", "must be ≥ 1")
    if not controller_timeout_s > 0:
        raise LightingInputError(
            f"segment {segment.segment_id!r}.controller_timeout_s", "must be above 0"
        )
    nights = tuple(
        effective_night(n, segment.classing)
        for n in resolve_segment_nights(segment, programs, first_night, count)
    )
    return NodeSchedule(segment.segment_id, nights, fallback_level_pct, controller_timeout_s)
