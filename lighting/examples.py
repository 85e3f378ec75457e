"""Example programs, a calendar and a synthetic street grid: test helpers shipped with the
model, used by the tests, the benchmark and the demo town.

The coordinates are Dortmund's (North Rhine-Westphalia, the default holiday state).
"""

from __future__ import annotations

from datetime import date, time

from lighting.calendar import Calendar, EventRule, HolidayRule, WeekdayRule
from lighting.classes import Classing
from lighting.presence import PresenceRule
from lighting.program import Anchor, Program, Step
from lighting.schedule import Programs
from lighting.site import LightingIndex, Luminaire, Segment, build_index
from lighting.traffic import TrafficRule

__all__ = [
    "CALENDAR",
    "FEIERTAG",
    "FULL",
    "LATITUDE_DEG",
    "LONGITUDE_DEG",
    "PROGRAMS",
    "STADTFEST_NIGHT",
    "WEEKEND",
    "WOHNSTRASSE",
    "example_grid",
    "example_segment",
]

LATITUDE_DEG = 51.514
LONGITUDE_DEG = 7.468

WOHNSTRASSE = Program(
    "Wohnstraße",
    (
        Step("on", Anchor.SUNSET, 100.0, ramp_s=60.0, offset_s=-600.0),
        Step("evening", Anchor.CLOCK, 70.0, ramp_s=300.0, clock=time(22, 0)),
        Step("after midnight", Anchor.SOLAR_MIDNIGHT, 30.0, ramp_s=300.0),
        Step("morning", Anchor.CLOCK, 70.0, ramp_s=300.0, clock=time(5, 0)),
        Step("off", Anchor.SUNRISE, 0.0, ramp_s=60.0, offset_s=600.0),
    ),
)

FEIERTAG = Program(
    "Feiertag",
    (
        Step("on", Anchor.SUNSET, 100.0, ramp_s=60.0, offset_s=-600.0),
        Step("after midnight", Anchor.SOLAR_MIDNIGHT, 30.0, ramp_s=300.0),
        Step("off", Anchor.SUNRISE, 0.0, ramp_s=60.0, offset_s=600.0),
    ),
)

WEEKEND = Program(
    "Wochenende",
    (
        Step("on", Anchor.SUNSET, 100.0, ramp_s=60.0, offset_s=-600.0),
        Step("late", Anchor.CLOCK, 70.0, ramp_s=300.0, clock=time(0, 0)),
        Step("night", Anchor.CLOCK, 30.0, ramp_s=300.0, clock=time(2, 30)),
        Step("off", Anchor.SUNRISE, 0.0, ramp_s=60.0, offset_s=600.0),
    ),
)

FULL = Program(
    "Volllicht",
    (
        Step("on", Anchor.SUNSET, 100.0),
        Step("off", Anchor.SUNRISE, 0.0),
    ),
)

STADTFEST_NIGHT = date(2026, 8, 29)

CALENDAR = Calendar(
    "Stadt",
    (
        EventRule("Stadtfest", "Volllicht", frozenset({STADTFEST_NIGHT})),
        HolidayRule("Feiertag", "Feiertag"),
        WeekdayRule("Wochenende", "Wochenende", frozenset({4, 5})),
    ),
    default_program="Wohnstraße",
)

PROGRAMS = Programs(
    {p.name: p for p in (WOHNSTRASSE, FEIERTAG, WEEKEND, FULL)}, {"default": CALENDAR}
)


def example_segment(
    segment_id: str = "seg-0",
    *,
    traffic: bool = True,
    presence: bool = True,
    latitude_deg: float = LATITUDE_DEG,
    longitude_deg: float = LONGITUDE_DEG,
) -> Segment:
    """A residential street, design class M4 (may lower to M5, M6; floor 20 % here since the
    installation reaches M4 at 50 %), 600 veh/h capacity, a 1-behind/3-ahead corridor."""
    return Segment(
        segment_id,
        latitude_deg,
        longitude_deg,
        Classing(segment_id, "M4", ("M5", "M6"), design_level_pct=50.0, driver_min_pct=10.0),
        traffic=TrafficRule(segment_id, capacity_veh_per_h=600.0) if traffic else None,
        presence=PresenceRule(segment_id, boost_pct=80.0, hold_s=60.0) if presence else None,
    )


def example_grid(segments: int, per_segment: int, rated_power_w: float = 40.0) -> LightingIndex:
    """``segments`` street sections of ``per_segment`` luminaires; every 4 segments form one
    street, so corridors cross segment borders."""
    segs = [example_segment(f"seg-{s}") for s in range(segments)]
    lums = [
        Luminaire(
            f"lum-{s}-{i}",
            f"seg-{s}",
            f"street-{s // 4}",
            (s % 4) * per_segment + i,
            rated_power_w,
        )
        for s in range(segments)
        for i in range(per_segment)
    ]
    return build_index(segs, lums)
