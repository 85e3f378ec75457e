"""Presence corridors along the street order, across segment borders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lighting.classes import Classing
from lighting.errors import LightingInputError
from lighting.examples import PROGRAMS, example_grid, example_segment
from lighting.presence import Detection, apply_detection, corridor, prune_holds
from lighting.schedule import resolve_segment_night
from lighting.site import Luminaire, Segment, build_index
from lighting.tick import decide_tick

INDEX = example_grid(4, 10)  # one street: poles 0..39, segments of 10 poles each
T = datetime(2026, 1, 14, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pole", "direction", "expected_poles"),
    [
        (15, 1, [14, 15, 16, 17, 18]),  # 1 behind, 3 ahead
        (15, -1, [12, 13, 14, 15, 16]),  # travelling towards lower poles
        (15, 0, [12, 13, 14, 15, 16, 17, 18]),  # direction unknown: 3 both ways
        (9, 1, [8, 9, 10, 11, 12]),  # crosses from seg-0 into seg-1
        (0, -1, [0, 1]),  # clipped at the start of the street
        (39, 1, [38, 39]),  # clipped at the end
    ],
)
def test_corridor_follows_the_street_order(
    pole: int, direction: int, expected_poles: list[int]
) -> None:
    ids = corridor(INDEX, Detection("street-0", pole, T, direction))
    assert [INDEX.luminaires[i].pole_index for i in ids] == expected_poles


def test_corridor_uses_street_order_not_id_order() -> None:
    seg = example_segment("s")
    poles = [40, 10, 30, 20, 0]
    lums = [Luminaire(f"l{p}", "s", "main", p, 30.0) for p in poles]
    index = build_index([seg], lums)
    ids = corridor(index, Detection("main", 21, T, direction=1))  # nearest pole: 20
    assert ids == ("l10", "l20", "l30", "l40")


def test_overlapping_detections_extend_the_hold() -> None:
    holds, first = apply_detection(INDEX, {}, Detection("street-0", 15, T, 1))
    assert {c.target for c in first} == {f"lum-1-{i}" for i in (4, 5, 6, 7, 8)}
    assert all(c.value == 80.0 and c.ramp_s == 1.0 and c.decided_at == T for c in first)
    assert all(c.expires_at == T + timedelta(seconds=60) for c in first)
    later = T + timedelta(seconds=30)
    holds2, second = apply_detection(INDEX, holds, Detection("street-0", 17, later, 1))
    assert holds2["lum-1-6"].until == later + timedelta(seconds=60)
    assert holds2["lum-1-4"].until == T + timedelta(seconds=60)  # outside the new corridor
    assert "lum-1-9" in holds2
    # the same detection again changes nothing and publishes nothing
    holds3, again = apply_detection(INDEX, holds2, Detection("street-0", 17, later, 1))
    assert again == ()
    assert holds3 == holds2
    # ids are derived from the detection, so a repeated publish is idempotent on the node
    assert len({c.command_id for c in second}) == len(second)


def test_hold_then_ramp_down_then_gone() -> None:
    nights = {
        sid: resolve_segment_night(s, PROGRAMS, date(2026, 1, 14))
        for sid, s in INDEX.segments.items()
    }
    late = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)  # program 30 %
    holds, _ = apply_detection(INDEX, {}, Detection("street-0", 5, late, 1))

    def level(dt: datetime) -> tuple[float, float]:
        dec = decide_tick(INDEX, nights, {}, {}, holds, [], dt).decisions["lum-0-5"]
        return dec.level_pct, dec.ramp_s

    assert level(late + timedelta(seconds=59)) == (80.0, 1.0)
    assert level(late + timedelta(seconds=61)) == (30.0, 30.0)  # ramping down over 30 s
    assert level(late + timedelta(seconds=95)) == (30.0, 300.0)  # the program's own ramp
    assert prune_holds(holds, late + timedelta(seconds=95)) == {}


def test_no_command_for_overridden_unlit_or_already_bright_luminaires() -> None:
    nights = {
        sid: resolve_segment_night(s, PROGRAMS, date(2026, 1, 14))
        for sid, s in INDEX.segments.items()
    }
    evening = decide_tick(INDEX, nights, {}, {}, {}, [], T).decisions  # 100 % ≥ boost 80 %
    holds, cmds = apply_detection(INDEX, {}, Detection("street-0", 15, T, 1), evening)
    assert cmds == ()
    assert len(holds) == 5  # but the hold is kept for when the program dims
    noon = datetime(2026, 1, 14, 11, 30, tzinfo=UTC)
    day = decide_tick(INDEX, nights, {}, {}, {}, [], noon).decisions
    assert apply_detection(INDEX, {}, Detection("street-0", 15, noon, 1), day)[1] == ()


def test_segments_without_presence_rule_are_not_boosted() -> None:
    plain = Segment("plain", 51.5, 7.5, Classing("plain", "M4"))
    lums = [Luminaire(f"p{i}", "plain", "x", i, 30.0) for i in range(5)]
    index = build_index([plain], lums)
    assert corridor(index, Detection("x", 2, T)) == ()
    with pytest.raises(LightingInputError, match=r"detection\.street_id"):
        corridor(index, Detection("nowhere", 2, T))


def test_duplicate_pole_is_refused() -> None:
    seg = example_segment("s")
    with pytest.raises(LightingInputError) as err:
        build_index([seg], [Luminaire("a", "s", "m", 1, 30.0), Luminaire("b", "s", "m", 1, 30.0)])
    assert err.value.field == "luminaire 'b'.pole_index"


@settings(max_examples=200, deadline=None)
@given(
    poles=st.lists(st.integers(0, 500), min_size=1, max_size=40, unique=True),
    at_pole=st.integers(-20, 520),
    direction=st.sampled_from([-1, 0, 1]),
)
def test_corridor_is_a_contiguous_run_of_street_order_around_the_nearest_pole(
    poles: list[int], at_pole: int, direction: int
) -> None:
    seg = example_segment("s")  # 1 behind, 3 ahead
    index = build_index([seg], [Luminaire(f"l{p}", "s", "m", p, 30.0) for p in poles])
    order = sorted(poles)
    nearest = min(order, key=lambda p: (abs(p - at_pole), p))
    ids = corridor(index, Detection("m", at_pole, T, direction))
    got = [index.luminaires[i].pole_index for i in ids]
    i = order.index(nearest)
    behind, ahead = {1: (1, 3), -1: (3, 1), 0: (3, 3)}[direction]
    assert got == order[max(0, i - behind) : i + ahead + 1]
