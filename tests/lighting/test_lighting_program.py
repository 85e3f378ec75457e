"""Programs resolved per night: winter, summer, both DST nights, a holiday, an event."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lighting.calendar import Calendar
from lighting.classes import Classing
from lighting.errors import LightingInputError
from lighting.examples import PROGRAMS, WOHNSTRASSE, example_segment
from lighting.program import (
    Anchor,
    Program,
    Step,
    check_program,
    level_curve,
    resolve_clock,
    resolve_night,
    step_at,
)
from lighting.schedule import node_schedule, resolve_segment_night
from lighting.site import Segment
from lighting.sun import night_anchors

BERLIN = ZoneInfo("Europe/Berlin")
SEGMENT = example_segment()


def local(instant: datetime) -> datetime:
    return instant.astimezone(BERLIN)


@pytest.mark.parametrize(
    ("night", "program", "rule", "sunset_local_h", "midnight_local_h", "dark_h"),
    [
        # winter: sunset ~16:40 CET, solar midnight ~00:30 CET, ~16 h dark
        (date(2026, 1, 14), "Wohnstraße", "default", (16, 17), (0, 1), (15.0, 16.5)),
        # summer: sunset ~21:50 CEST, solar midnight ~01:30 CEST, ~7.5 h dark
        (date(2026, 6, 22), "Wohnstraße", "default", (21, 22), (1, 2), (7.0, 8.0)),
        # spring forward (morning of 29 March loses an hour); Saturday → weekend program
        (date(2026, 3, 28), "Wochenende", "Wochenende", (18, 19), (0, 1), (10.5, 12.0)),
        # fall back (morning of 25 October gains an hour); Saturday
        (date(2026, 10, 24), "Wochenende", "Wochenende", (18, 19), (1, 2), (12.5, 14.0)),
        # Christmas Day (holiday in NW) beats the weekday rules
        (date(2026, 12, 25), "Feiertag", "Feiertag", (16, 17), (0, 1), (15.5, 17.0)),
        # the town festival (an event) beats the holiday and weekend rules
        (date(2026, 8, 29), "Volllicht", "Stadtfest", (20, 21), (1, 2), (9.0, 10.5)),
    ],
)
def test_nights_resolve_to_sun_and_calendar(
    night: date,
    program: str,
    rule: str,
    sunset_local_h: tuple[int, int],
    midnight_local_h: tuple[int, int],
    dark_h: tuple[float, float],
) -> None:
    resolved = resolve_segment_night(SEGMENT, PROGRAMS, night)
    assert resolved.program == program
    assert resolved.rule == rule
    anchors = resolved.anchors
    assert sunset_local_h[0] <= local(anchors.sunset).hour < sunset_local_h[1]
    assert midnight_local_h[0] <= local(anchors.solar_midnight).hour < midnight_local_h[1]
    assert dark_h[0] <= anchors.dark_s / 3600 <= dark_h[1]
    assert anchors.sunset < anchors.civil_dusk < anchors.solar_midnight
    assert anchors.solar_midnight < anchors.civil_dawn < anchors.sunrise
    ats = [s.at for s in resolved.steps]
    assert ats == sorted(ats)
    assert len(set(ats)) == len(ats)
    assert all(resolved.start <= a < resolved.end for a in ats)
    assert resolved.steps[0].at == anchors.sunset - timedelta(minutes=10) or (
        resolved.steps[0].at == anchors.sunset
    )


def test_spring_forward_step_in_the_gap_fires_at_the_end_of_the_gap() -> None:
    resolved = resolve_segment_night(SEGMENT, PROGRAMS, date(2026, 3, 28))
    step = next(s for s in resolved.steps if s.step_name == "night")
    assert step.at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert local(step.at).strftime("%H:%M %Z") == "03:00 CEST"
    assert "DST gap" in step.note
    assert "02:30" in step.note
    # the clock-midnight step that night is an ordinary one
    late = next(s for s in resolved.steps if s.step_name == "late")
    assert late.note == ""
    assert late.at == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


def test_fall_back_step_that_occurs_twice_uses_the_first() -> None:
    resolved = resolve_segment_night(SEGMENT, PROGRAMS, date(2026, 10, 24))
    step = next(s for s in resolved.steps if s.step_name == "night")
    assert step.at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert "occurs twice" in step.note
    assert "CEST" in step.note


@pytest.mark.parametrize(
    ("day", "clock", "expected_utc", "noted"),
    [
        (date(2026, 1, 15), time(5, 0), datetime(2026, 1, 15, 4, 0, tzinfo=UTC), False),
        (date(2026, 7, 1), time(5, 0), datetime(2026, 7, 1, 3, 0, tzinfo=UTC), False),
        (date(2026, 3, 29), time(2, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), True),
        (date(2026, 3, 29), time(2, 59), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), True),
        (date(2026, 3, 29), time(3, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), False),
        (date(2026, 10, 25), time(2, 0), datetime(2026, 10, 25, 0, 0, tzinfo=UTC), True),
        (date(2026, 10, 25), time(3, 0), datetime(2026, 10, 25, 2, 0, tzinfo=UTC), False),
    ],
)
def test_clock_times_by_the_dst_rule(
    day: date, clock: time, expected_utc: datetime, noted: bool
) -> None:
    at, note = resolve_clock(day, clock, BERLIN)
    assert at == expected_utc
    assert bool(note) is noted


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    clock=st.times(),
)
def test_clock_resolution_is_exact_or_the_end_of_the_gap(day: date, clock: time) -> None:
    at, note = resolve_clock(day, clock, BERLIN)
    wall = datetime.combine(day, clock)
    shown = at.astimezone(BERLIN).replace(tzinfo=None)
    if shown == wall.replace(microsecond=0) or shown == wall:
        return
    # in a gap: the first local instant after the requested wall time, one second earlier is
    # still before it
    assert "DST gap" in note
    assert shown > wall
    before = (at - timedelta(seconds=1)).astimezone(BERLIN).replace(tzinfo=None)
    assert before < wall


def test_night_window_is_noon_to_noon_also_on_dst_nights() -> None:
    spring = night_anchors(SEGMENT.place, date(2026, 3, 28))
    autumn = night_anchors(SEGMENT.place, date(2026, 10, 24))
    assert (spring.end - spring.start) == timedelta(hours=23)
    assert (autumn.end - autumn.start) == timedelta(hours=25)
    assert local(spring.start).hour == 12
    assert local(spring.end).hour == 12


def test_step_in_force_and_level_curve() -> None:
    resolved = resolve_night(WOHNSTRASSE, SEGMENT.place, date(2026, 1, 14))
    first = resolved.steps[0]
    assert step_at(resolved, first.at - timedelta(seconds=1)) is None
    assert step_at(resolved, first.at) == first
    late = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    in_force = step_at(resolved, late)
    assert in_force is not None
    assert in_force.step_name == "after midnight"
    curve = level_curve(resolved)
    assert curve[0] == (resolved.start, 0.0)
    assert curve[-1] == (resolved.end, 0.0)
    # the 'on' step ramps from 0 to 100 % over 60 s
    assert (first.at, 0.0) in curve
    assert (first.at + timedelta(seconds=60), 100.0) in curve


def test_node_schedule_applies_the_floor_and_carries_the_fallback() -> None:
    sched = node_schedule(SEGMENT, PROGRAMS, date(2026, 1, 12), count=3, fallback_level_pct=80)
    assert [n.night for n in sched.nights] == [
        date(2026, 1, 12),
        date(2026, 1, 13),
        date(2026, 1, 14),
    ]
    assert sched.fallback_level_pct == 80
    assert sched.controller_timeout_s == 900
    assert len(sched.steps) == sum(len(n.steps) for n in sched.nights)
    assert [s.at for s in sched.steps] == sorted(s.at for s in sched.steps)
    assert sched.valid_until == sched.nights[-1].end
    assert local(sched.valid_until).hour == 12
    # the floor is M6 = 50 % × 0.3/0.75 = 20 %, so 30 % after midnight stays 30 %
    lit = [s.level_pct for n in sched.nights for s in n.steps if s.level_pct > 0]
    assert min(lit) == 30.0
    assert sched.nights[0].steps[-1].level_pct == 0.0


def test_node_schedule_lifts_steps_below_the_floor() -> None:
    strict = Segment(
        "strict", 51.5, 7.5, Classing("strict", "M4", design_level_pct=50.0), calendar="default"
    )
    sched = node_schedule(strict, PROGRAMS, date(2026, 1, 14), count=1)
    levels = [s.level_pct for s in sched.nights[0].steps]
    assert levels == [100.0, 70.0, 50.0, 70.0, 0.0]  # 30 % lifted to the M4 level, 50 %


# --- bad input names the field ------------------------------------------------------------


def test_steps_out_of_order_after_resolving_anchors_name_program_and_step() -> None:
    program = Program(
        "Zu früh",
        (
            Step("on", Anchor.SUNSET, 100.0),
            Step("dim", Anchor.CLOCK, 50.0, clock=time(21, 0)),
            Step("off", Anchor.SUNRISE, 0.0),
        ),
    )
    resolve_night(program, SEGMENT.place, date(2026, 1, 14))  # fine in winter
    with pytest.raises(LightingInputError) as err:
        resolve_night(program, SEGMENT.place, date(2026, 6, 22))  # sunset after 21:00
    assert err.value.field == "program 'Zu früh'.steps[1] ('dim')"
    assert "time order" in err.value.reason
    assert "'on'" in err.value.reason


def test_a_year_check_finds_the_first_night_that_breaks() -> None:
    program = Program(
        "Zu früh",
        (
            Step("on", Anchor.SUNSET, 100.0),
            Step("dim", Anchor.CLOCK, 50.0, clock=time(21, 0)),
            Step("off", Anchor.SUNRISE, 0.0),
        ),
    )
    check_program(WOHNSTRASSE, SEGMENT.place, date(2026, 1, 1))
    with pytest.raises(LightingInputError) as err:
        check_program(program, SEGMENT.place, date(2026, 1, 1))
    assert err.value.field == "program 'Zu früh'.steps[1] ('dim')"
    assert "night of 2026-05-06" in err.value.reason  # sunset passes 21:00 CEST in May


def test_step_outside_the_night_is_refused() -> None:
    program = Program("Lang", (Step("on", Anchor.SUNRISE, 100.0, offset_s=8 * 3600),))
    with pytest.raises(LightingInputError, match=r"steps\[0\].*outside the night"):
        resolve_night(program, SEGMENT.place, date(2026, 6, 22))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: Program("P", (Step("on", Anchor.SUNSET, 120.0),)),
            "program 'P'.steps[0].level_pct",
        ),
        (
            lambda: Program("P", (Step("on", Anchor.SUNSET, -1.0),)),
            "program 'P'.steps[0].level_pct",
        ),
        (
            lambda: Program("P", (Step("on", Anchor.CLOCK, 50.0),)),
            "program 'P'.steps[0].clock",
        ),
        (
            lambda: Program("P", (Step("a", Anchor.SUNSET, 50.0), Step("a", Anchor.SUNRISE, 0.0))),
            "program 'P'.steps[1].name",
        ),
        (lambda: Program("P", ()), "program 'P'.steps"),
        (
            lambda: Program("P", (Step("on", Anchor.SUNSET, 50.0, ramp_s=4000.0),)),
            "program 'P'.steps[0].ramp_s",
        ),
        (
            lambda: Calendar("C", (), "Wohnstraße", state="XX"),
            "calendar 'C'.state",
        ),
        (
            lambda: Calendar("C", (), "Wohnstraße", country="XX", state=None),
            "calendar 'C'.country",
        ),
        (
            lambda: Segment("s1", None, 7.0, Classing("s1", "M4")),
            "segment 's1'.latitude_deg",
        ),
        (
            lambda: Segment("s1", 51.0, None, Classing("s1", "M4")),
            "segment 's1'.longitude_deg",
        ),
        (
            lambda: Segment("s1", 51.0, 7.0, Classing("s1", "M4", ("P5",))),
            "segment 's1'.lower_classes[0]",
        ),
        (lambda: Classing("s1", "M9"), "segment 's1'.design_class"),
        (
            lambda: Classing("s1", "M4", ("M5",), class_levels_pct={"M5": 101.0}),
            "segment 's1'.class_levels_pct.M5",
        ),
    ],
)
def test_bad_input_names_the_field(build: object, field: str) -> None:
    assert callable(build)
    with pytest.raises(LightingInputError) as err:
        build()
    assert err.value.field == field
    assert field in str(err.value)
