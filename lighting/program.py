"""Programs: steps anchored to the clock or the sun, resolved into UTC instants per night.

A :class:`Program` is a list of steps. Each step starts at an anchor (a local clock time, or
sunset, civil dusk, solar midnight, civil dawn, sunrise) plus an offset in seconds, and sets a
level in % with a ramp time in seconds. :func:`resolve_night` turns a program into the concrete
:class:`ResolvedStep` list of one night: this list is what nodes store as their schedule.

Rules (documented, not silent):

* A night runs from local noon of its date to local noon of the next day. A clock time at or
  after 12:00 belongs to the evening date, one before 12:00 to the following morning.
* Before its first step a night is dark-off: the level is 0 %.
* A clock time that does not exist (the spring-forward gap, 02:00–03:00 in Europe/Berlin) is
  resolved to the end of the gap: the step fires at the instant the clock jumps past it
  (02:30 → 03:00 CEST). A clock time that occurs twice (fall-back) uses its first occurrence
  (02:30 CEST, not 02:30 CET). Either case is recorded in :attr:`ResolvedStep.note`.
* The offset is added in real elapsed seconds after the anchor is resolved.
* After resolving, the steps must be strictly in time order and inside the night window;
  otherwise :class:`LightingInputError` names the program and the step.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lighting.energy import curve_from_commands
from lighting.errors import LightingInputError, check_level_pct
from lighting.sun import NightAnchors, Place, night_anchors, zone

#: Longest ramp a node accepts, in s (the node protocol's limit).
MAX_RAMP_S = 3600.0


class Anchor(enum.StrEnum):
    CLOCK = "clock"
    SUNSET = "sunset"
    CIVIL_DUSK = "civil_dusk"
    SOLAR_MIDNIGHT = "solar_midnight"
    CIVIL_DAWN = "civil_dawn"
    SUNRISE = "sunrise"


@dataclass(frozen=True, slots=True)
class Step:
    """Start at ``anchor`` (+ ``offset_s`` seconds) and go to ``level_pct`` over ``ramp_s``."""

    name: str
    anchor: Anchor
    level_pct: float
    ramp_s: float = 0.0
    offset_s: float = 0.0
    clock: time | None = None


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise LightingInputError(f"program {self.name!r}.steps", "a program needs a step")
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            where = f"program {self.name!r}.steps[{i}]"
            if step.name in seen:
                raise LightingInputError(f"{where}.name", f"duplicate step name {step.name!r}")
            seen.add(step.name)
            check_level_pct(f"{where}.level_pct", step.level_pct)
            if not 0.0 <= step.ramp_s <= MAX_RAMP_S:
                raise LightingInputError(
                    f"{where}.ramp_s", f"{step.ramp_s!r} s is not in [0, {MAX_RAMP_S:g}]"
                )
            if (step.anchor is Anchor.CLOCK) != (step.clock is not None):
                raise LightingInputError(
                    f"{where}.clock", "a clock time is needed with anchor 'clock' and only there"
                )


@dataclass(frozen=True, slots=True)
class ResolvedStep:
    """One concrete step of one night: what a node stores and runs by itself."""

    at: datetime
    level_pct: float
    ramp_s: float
    step_name: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class ResolvedNight:
    """A program resolved for one night at one place; ``steps`` are strictly time-ordered."""

    program: str
    anchors: NightAnchors
    steps: tuple[ResolvedStep, ...]
    rule: str = ""

    @property
    def night(self) -> date:
        return self.anchors.night

    @property
    def start(self) -> datetime:
        return self.anchors.start

    @property
    def end(self) -> datetime:
        return self.anchors.end


def resolve_clock(day: date, clock: time, tz: ZoneInfo) -> tuple[datetime, str]:
    """Local wall-clock ``clock`` on ``day`` as a UTC instant, by the DST rules above."""
    first = datetime.combine(day, clock, tzinfo=tz)
    utc0 = first.astimezone(UTC)
    utc1 = first.replace(fold=1).astimezone(UTC)
    if utc0.astimezone(tz).replace(tzinfo=None) != first.replace(tzinfo=None):
        # In the gap: zoneinfo maps fold=0 with the old offset (too late) and fold=1 with the
        # new one (too early); the clock jumps over ``clock`` somewhere in between.
        low, high = min(utc0, utc1), max(utc0, utc1)
        while high - low > timedelta(seconds=1):
            mid = low + (high - low) / 2
            if mid.astimezone(tz).replace(tzinfo=None) < first.replace(tzinfo=None):
                low = mid
            else:
                high = mid
        at = high.replace(microsecond=0)
        local = at.astimezone(tz)
        note = (
            f"{clock.isoformat('minutes')} does not exist on {day.isoformat()} (DST gap): "
            f"resolved to {local.strftime('%H:%M %Z')}, the end of the gap"
        )
        return at, note
    if utc0 != utc1:
        local = utc0.astimezone(tz)
        note = (
            f"{clock.isoformat('minutes')} occurs twice on {day.isoformat()} (DST end): "
            f"the first, {local.strftime('%H:%M %Z')}, is used"
        )
        return utc0, note
    return utc0, ""


def _anchor_instant(step: Step, anchors: NightAnchors, tz: ZoneInfo) -> tuple[datetime, str]:
    if step.anchor is Anchor.CLOCK:
        assert step.clock is not None
        day = anchors.night if step.clock >= time(12) else anchors.night + timedelta(days=1)
        return resolve_clock(day, step.clock, tz)
    by_anchor = {
        Anchor.SUNSET: anchors.sunset,
        Anchor.CIVIL_DUSK: anchors.civil_dusk,
        Anchor.SOLAR_MIDNIGHT: anchors.solar_midnight,
        Anchor.CIVIL_DAWN: anchors.civil_dawn,
        Anchor.SUNRISE: anchors.sunrise,
    }
    return by_anchor[step.anchor], ""


def resolve_with_anchors(
    program: Program, anchors: NightAnchors, timezone: str, rule: str = ""
) -> ResolvedNight:
    """Resolve ``program`` against already computed ``anchors`` (see :func:`resolve_night`)."""
    tz = zone(timezone)
    resolved: list[ResolvedStep] = []
    for i, step in enumerate(program.steps):
        base, note = _anchor_instant(step, anchors, tz)
        at = base + timedelta(seconds=step.offset_s)
        where = f"program {program.name!r}.steps[{i}] ({step.name!r})"
        local = at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        if not anchors.start <= at < anchors.end:
            raise LightingInputError(
                where,
                f"resolves to {local}, outside the night of {anchors.night.isoformat()} "
                "(local noon to noon)",
            )
        if resolved and at <= resolved[-1].at:
            prev = resolved[-1]
            raise LightingInputError(
                where,
                f"resolves to {local} on the night of {anchors.night.isoformat()}, not after "
                f"step {prev.step_name!r} at {prev.at.astimezone(tz).strftime('%H:%M %Z')}; "
                "steps must be in time order after resolving anchors",
            )
        resolved.append(ResolvedStep(at, step.level_pct, step.ramp_s, step.name, note))
    return ResolvedNight(program.name, anchors, tuple(resolved), rule)


def resolve_night(program: Program, place: Place, night: date, rule: str = "") -> ResolvedNight:
    """The concrete steps of ``program`` on ``night`` (evening date) at ``place``."""
    return resolve_with_anchors(program, night_anchors(place, night), place.timezone, rule)


def check_program(program: Program, place: Place, first_night: date, nights: int = 366) -> None:
    """Resolve ``program`` on every night from ``first_night`` on and raise the first
    :class:`LightingInputError` (steps out of order, outside the night): the check a lighting
    engineer runs before a program goes live, since an anchor order can hold in winter and
    break in summer."""
    for k in range(nights):
        night = first_night + timedelta(days=k)
        resolve_with_anchors(program, night_anchors(place, night), place.timezone)


def step_at(resolved: ResolvedNight, instant: datetime) -> ResolvedStep | None:
    """The step in force at ``instant`` (the last one at or before it), or None before the
    first step (dark-off) and outside the night window."""
    if not resolved.start <= instant < resolved.end:
        return None
    steps = resolved.steps
    index = bisect_right([s.at for s in steps], instant) - 1
    return steps[index] if index >= 0 else None


def level_curve(resolved: ResolvedNight) -> list[tuple[datetime, float]]:
    """Level over the night as breakpoints of a piecewise-linear curve (UTC instant, %),
    from the window start (0 %, dark-off) to the window end; see
    :func:`lighting.energy.curve_from_commands` for ramps."""
    return curve_from_commands(
        resolved.start, resolved.end, ((s.at, s.level_pct, s.ramp_s) for s in resolved.steps)
    )
