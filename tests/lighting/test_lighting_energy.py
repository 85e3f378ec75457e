"""Power, energy, savings, CO₂, preview (table and SVG) and the load forecast."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lighting.energy import (
    DEFAULT_CURVE,
    Load,
    curve_from_commands,
    energy_per_interval,
    energy_wh,
    load_of,
)
from lighting.errors import LightingInputError
from lighting.examples import FULL, PROGRAMS, example_grid
from lighting.forecast import lighting_load_forecast, quarter_hours
from lighting.preview import format_table, preview_night, preview_year
from lighting.program import Anchor
from lighting.site import Luminaire
from lighting.svg import render_levels_svg, render_year_svg

LUMS = [Luminaire(f"l{i}", "seg-0", "s", i, 40.0, standby_power_w=0.5) for i in range(10)]
LOAD = load_of(LUMS)
T0 = datetime(2026, 1, 14, 18, 0, tzinfo=UTC)
INDEX = example_grid(4, 10)
SEG = INDEX.segments["seg-0"]


@pytest.mark.parametrize(
    ("level", "power_w"),
    [(0.0, 5.0), (100.0, 405.0), (50.0, 5.0 + 400 * 0.53), (20.0, 5.0 + 400 * 0.23)],
)
def test_power_follows_the_driver_curve(level: float, power_w: float) -> None:
    assert LOAD.power_w(level) == pytest.approx(power_w)


def test_energy_of_a_constant_hour_and_of_a_ramp() -> None:
    flat = [(T0, 50.0), (T0 + timedelta(hours=1), 50.0)]
    assert energy_wh(flat, LOAD) == pytest.approx(5.0 + 400 * 0.53)
    # a ramp 0 → 100 % over one hour through the curve's knots: mean of the piecewise curve
    ramp = [(T0, 0.0), (T0 + timedelta(hours=1), 100.0)]
    pts = DEFAULT_CURVE.points
    mean_fraction = sum(
        (l1 - l0) / 100.0 * (f0 + f1) / 2 for (l0, f0), (l1, f1) in itertools.pairwise(pts)
    )
    assert energy_wh(ramp, LOAD) == pytest.approx(5.0 + 400 * mean_fraction)
    # only part of it
    half = energy_wh(flat, LOAD, T0, T0 + timedelta(minutes=30))
    assert half == pytest.approx((5.0 + 400 * 0.53) / 2)


@given(
    st.lists(
        st.tuples(st.integers(0, 3600), st.floats(0, 100), st.floats(0, 900)),
        max_size=10,
    )
)
def test_energy_is_between_standby_and_full_power(cmds: list[tuple[int, float, float]]) -> None:
    end = T0 + timedelta(hours=1)
    commands = sorted((T0 + timedelta(seconds=s), lvl, r) for s, lvl, r in cmds)
    curve = curve_from_commands(T0, end, commands)
    used = energy_wh(curve, LOAD)
    assert LOAD.standby_w - 1e-9 <= used <= LOAD.power_w(100.0) + 1e-9
    for _, level in curve:
        assert 0.0 <= level <= 100.0


@given(
    st.lists(
        st.tuples(st.integers(0, 7200), st.floats(0, 100), st.floats(0, 900)),
        max_size=8,
    ),
    st.lists(st.integers(-600, 8000), min_size=2, max_size=12, unique=True),
)
def test_energy_per_interval_matches_integrating_each_interval(
    cmds: list[tuple[int, float, float]], edge_s: list[int]
) -> None:
    end = T0 + timedelta(hours=2)
    commands = sorted((T0 + timedelta(seconds=s), lvl, r) for s, lvl, r in cmds)
    curve = curve_from_commands(T0, end, commands)
    edges = sorted(T0 + timedelta(seconds=s) for s in edge_s)
    fast = energy_per_interval(curve, LOAD, edges)
    for (a, b), got in zip(itertools.pairwise(edges), fast, strict=True):
        lo, hi = max(a, T0), min(b, end)
        want = energy_wh(curve, LOAD, lo, hi) if lo < hi else 0.0
        assert got == pytest.approx(want, abs=1e-9)


def test_a_new_command_cuts_a_running_ramp_short() -> None:
    curve = curve_from_commands(
        T0, T0 + timedelta(hours=1), [(T0, 100.0, 100.0), (T0 + timedelta(seconds=50), 0.0, 0.0)]
    )
    assert (T0 + timedelta(seconds=50), 50.0) in curve
    assert curve[-1] == (T0 + timedelta(hours=1), 0.0)


def test_preview_night_savings_and_co2() -> None:
    lums = INDEX.by_segment["seg-0"]
    dimmed = preview_night(SEG, lums, PROGRAMS, date(2026, 1, 14))
    full = preview_night(SEG, lums, PROGRAMS, date(2026, 1, 14), program=FULL)
    e = dimmed.energy
    assert e.program == "Wohnstraße"
    assert 0 < e.energy_wh < e.baseline_wh
    assert 20.0 < e.savings_pct < 60.0
    assert e.co2_kg == pytest.approx(e.energy_wh / 1000 * 0.38, rel=1e-3)
    # full light from sunset to sunrise is the baseline itself
    assert abs(full.energy.energy_wh - full.energy.baseline_wh) <= 1
    assert abs(full.energy.savings_pct) < 0.1
    civil = preview_night(
        SEG, lums, PROGRAMS, date(2026, 1, 14), baseline=(Anchor.CIVIL_DUSK, Anchor.CIVIL_DAWN)
    )
    assert civil.energy.energy_wh == e.energy_wh
    assert civil.energy.baseline_wh < e.baseline_wh  # civil twilight: a shorter night
    with pytest.raises(LightingInputError, match="baseline"):
        preview_night(
            SEG, lums, PROGRAMS, date(2026, 1, 14), baseline=(Anchor.CLOCK, Anchor.SUNRISE)
        )
    table = format_table([e, full.energy])
    assert table.count("\n") == 4
    assert "| 2026-01-14 | Wohnstraße |" in table


def test_preview_year_has_every_night_and_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    year = preview_year(
        SEG, INDEX.by_segment["seg-0"], PROGRAMS, 2026, progress=lambda d, t: seen.append((d, t))
    )
    assert len(year.rows) == 365
    assert seen[-1] == (365, 365)
    assert len(seen) == 365
    assert {r.program for r in year.rows} == {"Wohnstraße", "Wochenende", "Feiertag", "Volllicht"}
    winter = next(r for r in year.rows if r.night == date(2026, 1, 14))
    summer = next(r for r in year.rows if r.night == date(2026, 6, 24))
    assert winter.baseline_wh > 1.8 * summer.baseline_wh
    assert year.energy_wh == sum(r.energy_wh for r in year.rows)
    assert 0 < year.savings_pct < 100
    svg = ElementTree.fromstring(render_year_svg(year.rows, title="seg-0 2026"))
    lines = [e for e in svg.iter() if e.tag.endswith("polyline")]
    assert [len(e.attrib["points"].split()) for e in lines] == [365, 365]
    months = [e.text for e in svg.iter() if e.tag.endswith("text") and "/2026" in (e.text or "")]
    assert len(months) == 12


def test_svg_plot_is_valid_and_shows_the_curve() -> None:
    night = preview_night(SEG, INDEX.by_segment["seg-0"], PROGRAMS, date(2026, 3, 28))
    svg = render_levels_svg([("Wochenende", night.curve)], title="seg-0, 28/29 March 2026")
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    polylines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(polylines) == 1
    assert len(polylines[0].attrib["points"].split()) == len(night.curve)
    labels = [e.text for e in root.iter() if e.tag.endswith("text")]
    # every 2nd local hour is labelled; on the spring-forward night 02:00 does not exist
    assert {"22:00", "00:00", "04:00"} <= set(labels)
    assert "02:00" not in labels
    normal = preview_night(SEG, INDEX.by_segment["seg-0"], PROGRAMS, date(2026, 3, 21))
    normal_root = ElementTree.fromstring(render_levels_svg([("x", normal.curve)]))
    assert "02:00" in [e.text for e in normal_root.iter() if e.tag.endswith("text")]


@pytest.mark.parametrize(
    ("day", "count"), [(date(2026, 3, 29), 92), (date(2026, 6, 1), 96), (date(2026, 10, 25), 100)]
)
def test_quarter_hours_of_a_local_day(day: date, count: int) -> None:
    starts = quarter_hours(day)
    assert len(starts) == count
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(starts))


def test_load_forecast_matches_the_night_energy() -> None:
    fc = lighting_load_forecast(INDEX, PROGRAMS, date(2026, 1, 15))
    assert len(fc.power_w) == 96
    noon_index = 12 * 4
    standby = sum(load_of(v).standby_w for v in INDEX.by_segment.values())
    assert fc.power_w[noon_index] == pytest.approx(standby)
    assert max(fc.power_w) == pytest.approx(
        sum(load_of(v).power_w(100.0) for v in INDEX.by_segment.values())
    )
    # the day's evening part equals the night's energy after midnight UTC… check the total
    # against the two nights' energy restricted to the day
    lums = [lum for v in INDEX.by_segment.values() for lum in v]
    total_load = load_of(lums)
    before = preview_night(SEG, lums, PROGRAMS, date(2026, 1, 14))
    after = preview_night(SEG, lums, PROGRAMS, date(2026, 1, 15))
    day_start, day_end = fc.starts[0], fc.starts[-1] + timedelta(minutes=15)
    expected = energy_wh(before.curve, total_load, day_start, before.night.end) + energy_wh(
        after.curve, total_load, after.night.start, day_end
    )
    assert fc.energy_wh == pytest.approx(expected, rel=1e-9)
    assert isinstance(total_load, Load)
