"""The decision tick: precedence, reason chains, floors, overrides and their expiry."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.commands import CommandKind
from lighting.classes import floor_pct
from lighting.examples import PROGRAMS, example_grid
from lighting.overrides import Override, Scope
from lighting.presence import Detection, PresenceHold, apply_detection
from lighting.program import ResolvedNight
from lighting.schedule import nights_covering, resolve_segment_night
from lighting.tick import Tick, decide_tick, level_commands
from lighting.traffic import TrafficSample, TrafficState

INDEX = example_grid(8, 10)  # two streets of four segments, 10 luminaires each
NIGHT = date(2026, 1, 14)  # a Wednesday: program 'Wohnstraße'
NIGHTS: dict[str, ResolvedNight] = {
    sid: resolve_segment_night(seg, PROGRAMS, NIGHT) for sid, seg in INDEX.segments.items()
}
EVENING = datetime(2026, 1, 14, 19, 0, tzinfo=UTC)  # 20:00 CET, step 'on' 100 %
LATE = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)  # 02:00 CET, step 'after midnight' 30 %
NOON = datetime(2026, 1, 14, 12, 30, tzinfo=UTC)  # by day


def tick(
    now: datetime,
    traffic: dict[str, TrafficState] | None = None,
    samples: dict[str, TrafficSample] | None = None,
    holds: dict[str, PresenceHold] | None = None,
    overrides: list[Override] | None = None,
) -> Tick:
    return decide_tick(
        INDEX,
        NIGHTS,
        traffic or {},
        samples or {},
        holds or {},
        overrides or [],
        now,
    )


def low_traffic_until(now: datetime, count: int = 4) -> Tick:
    """Ticks every 10 minutes with low counts from an hour before ``now``."""
    result = None
    traffic: dict[str, TrafficState] = {}
    t = now - timedelta(minutes=60)
    while t <= now:
        samples = {sid: TrafficSample(t, count) for sid in INDEX.segments}
        result = tick(t, traffic, samples)
        traffic = result.traffic
        t += timedelta(minutes=10)
    assert result is not None
    return result


def test_program_level_with_sensor_silent_keeps_design_class() -> None:
    result = tick(EVENING)
    dec = result.decisions["lum-0-0"]
    assert dec.level_pct == 100.0
    assert dec.reasons[0] == "program 'Wohnstraße' step 'on' 100 %"
    assert "design class" in dec.reasons[1]
    assert result.segments["seg-0"].lighting_class == "M4"


def test_reason_chain_program_class_presence() -> None:
    lowered = low_traffic_until(LATE, count=5)  # 30 veh/h: two classes lower (M6)
    dec = lowered.decisions["lum-0-3"]
    # 30 % × (M6 0.3 / M4 0.75) = 12 %, lifted to the floor M6 = 50 % × 0.4 = 20 %
    assert dec.level_pct == 20.0
    assert dec.reasons[0] == "program 'Wohnstraße' step 'after midnight' 30 %"
    assert dec.reasons[1] == "class lowered to M6 by traffic 30 veh/h → 12 %"
    assert dec.reasons[2].startswith("raised to floor 20 %")
    holds, commands = apply_detection(
        INDEX, {}, Detection("street-0", 3, LATE, direction=1), lowered.decisions
    )
    assert {c.target for c in commands} == {f"lum-0-{i}" for i in (2, 3, 4, 5, 6)}
    boosted = decide_tick(
        INDEX, NIGHTS, lowered.traffic, {}, holds, [], LATE + timedelta(seconds=5)
    ).decisions["lum-0-3"]
    assert boosted.level_pct == 80.0
    assert boosted.ramp_s == 1.0
    assert boosted.reasons[-1] == "presence boost 80 % until 02:01:00"
    assert " → " in boosted.reason_text


def test_one_class_lower_scales_the_program_level() -> None:
    lowered = low_traffic_until(EVENING, count=40)  # 240 veh/h: one class lower (M5)
    seg = lowered.segments["seg-1"]
    assert seg.lighting_class == "M5"
    assert abs(seg.level_pct - 100.0 * 0.5 / 0.75) < 1e-9


def test_sensor_failure_returns_the_segment_to_design_class() -> None:
    lowered = low_traffic_until(LATE, count=5)
    assert lowered.segments["seg-2"].lighting_class == "M6"
    broken = tick(
        LATE + timedelta(minutes=5),
        lowered.traffic,
        {"seg-2": TrafficSample(LATE + timedelta(minutes=5), None)},
    )
    assert broken.segments["seg-2"].lighting_class == "M4"
    assert broken.decisions["lum-2-0"].level_pct == 30.0
    assert broken.decisions["lum-2-0"].ramp_s == INDEX.segments["seg-2"].class_ramp_s
    silent = tick(LATE + timedelta(minutes=40), lowered.traffic, {})
    assert silent.segments["seg-3"].lighting_class == "M4"
    assert "silent" in silent.segments["seg-3"].reasons[1]


def test_off_by_day_and_presence_does_not_light_by_day() -> None:
    holds, _ = apply_detection(INDEX, {}, Detection("street-0", 3, NOON))
    result = tick(NOON, holds=dict(holds))
    assert result.decisions["lum-0-3"].level_pct == 0.0
    assert "off by day" in result.decisions["lum-0-3"].reasons[0]


def test_override_precedence_and_expiry() -> None:
    start, end = EVENING - timedelta(minutes=5), EVENING + timedelta(minutes=30)
    overrides = [
        Override("all-dim", Scope.ALL, None, 40.0, start, end),
        Override("seg-off", Scope.SEGMENT, "seg-1", 0.0, start, end),
        Override("lamp-test", Scope.LUMINAIRE, "lum-1-5", 100.0, start, end),
        Override("later-all", Scope.ALL, None, 60.0, start + timedelta(minutes=1), end),
    ]
    holds, _ = apply_detection(INDEX, {}, Detection("street-0", 5, EVENING))
    result = tick(EVENING, holds=dict(holds), overrides=overrides)
    d = result.decisions
    assert d["lum-1-5"].level_pct == 100.0  # luminaire beats segment
    assert d["lum-1-4"].level_pct == 0.0  # segment beats all
    assert d["lum-0-5"].level_pct == 60.0  # the later site-wide override beats presence too
    assert d["lum-0-5"].overridden
    assert "override 'later-all' (all) 60 %" in d["lum-0-5"].reasons[-1]
    after = tick(end, overrides=overrides)
    assert after.decisions["lum-0-5"].level_pct == 100.0  # program resumes
    assert not after.decisions["lum-0-5"].overridden
    by_day = tick(NOON, overrides=[Override("test", Scope.SEGMENT, "seg-0", 5.0, NOON, end)])
    assert by_day.decisions["lum-0-0"].level_pct == 10.0  # raised to the driver minimum


def test_level_commands_only_for_changes_with_stable_ids() -> None:
    first = tick(EVENING)
    all_cmds = level_commands(first.decisions, {}, first.at, 300.0)
    assert len(all_cmds) == len(INDEX.luminaires)
    assert {c.kind for c in all_cmds} == {CommandKind.DIM_LEVEL_PCT}
    assert {c.decided_at for c in all_cmds} == {first.at}
    in_force = {c.target: c for c in all_cmds}
    ten_s = EVENING + timedelta(seconds=10)
    assert level_commands(tick(ten_s).decisions, in_force, ten_s, 300.0) == ()
    later = tick(datetime(2026, 1, 14, 21, 1, tzinfo=UTC))  # 22:01 CET: step 'evening' 70 %
    cmds = level_commands(later.decisions, in_force, later.at, 300.0)
    assert len(cmds) == len(INDEX.luminaires)
    assert {c.value for c in cmds} == {70.0}
    assert {c.ramp_s for c in cmds} == {300.0}
    assert cmds[0].expires_at == later.at + timedelta(seconds=300)
    assert cmds[0].reason.startswith("program 'Wohnstraße' step 'evening' 70 %")
    # ids are derived, not random
    assert level_commands(later.decisions, in_force, later.at, 300.0) == cmds


def test_a_command_without_decision_instant_is_renewed_in_its_last_window() -> None:
    first = tick(EVENING)
    made = level_commands(first.decisions, {}, first.at, 300.0)
    in_force = {c.target: dataclasses.replace(c, decided_at=None) for c in made}
    at = EVENING + timedelta(seconds=230)
    decisions = tick(at).decisions
    # 70 s left: not yet within the 60 s renewal window (no phase: its decision is unknown)
    assert level_commands(decisions, in_force, at, 300.0, renew_within_s=60.0) == ()
    at = EVENING + timedelta(seconds=245)
    renewed = level_commands(tick(at).decisions, in_force, at, 300.0, renew_within_s=60.0)
    assert len(renewed) == len(INDEX.luminaires)
    assert {c.value for c in renewed} == {100.0}
    assert not {c.command_id for c in renewed} & {c.command_id for c in in_force.values()}


def test_unchanged_levels_are_renewed_spread_over_the_period_and_never_expire() -> None:
    """All luminaires commanded in one tick are renewed over the next period (240 s), a few
    per tick, each once per period, and no command in force ever runs out."""
    life_s, renew_s, step = 300.0, 60.0, timedelta(seconds=60)
    period = timedelta(seconds=life_s - renew_s)
    first = tick(EVENING)
    in_force = {c.target: c for c in level_commands(first.decisions, {}, first.at, life_s)}
    renewed_at: dict[str, list[datetime]] = {lid: [EVENING] for lid in in_force}
    per_tick: list[int] = []
    at = EVENING
    for _ in range(16):  # four periods, one tick a minute, the level stays (100 %)
        at += step
        assert all(c.expires_at > at for c in in_force.values())
        cmds = level_commands(tick(at).decisions, in_force, at, life_s, renew_within_s=renew_s)
        assert {c.value for c in cmds} <= {100.0}
        per_tick.append(len(cmds))
        for c in cmds:
            in_force[c.target] = c
            renewed_at[c.target].append(at)
    n = len(INDEX.luminaires)
    assert sum(per_tick) >= 3 * n  # every luminaire at least three times in four periods
    assert max(per_tick) <= n // 2  # spread: before, all 80 came in one tick
    assert min(per_tick[4:]) > 0  # ...and every tick has some
    for lid, times in renewed_at.items():
        gaps = [b - a for a, b in itertools.pairwise(times[1:])]
        assert all(period - step <= g <= period + step for g in gaps), (lid, gaps)
        assert times[1] - times[0] <= period + step, lid


instants = st.integers(min_value=0, max_value=24 * 3600 - 1).map(
    lambda s: NIGHTS["seg-0"].start + timedelta(seconds=s)
)


@settings(max_examples=60, deadline=None)
@given(
    start=instants,
    counts=st.lists(st.one_of(st.none(), st.integers(-1, 200)), min_size=1, max_size=12),
    pole=st.integers(0, 39),
    detect=st.booleans(),
)
def test_level_always_within_floor_and_100(
    start: datetime, counts: list[int | None], pole: int, detect: bool
) -> None:
    if start + timedelta(minutes=10 * len(counts)) >= NIGHTS["seg-0"].end:
        start = NIGHTS["seg-0"].end - timedelta(minutes=10 * len(counts) + 1)
    traffic: dict[str, TrafficState] = {}
    holds: dict[str, PresenceHold] = {}
    for k, count in enumerate(counts):
        now = start + timedelta(minutes=10 * k)
        if detect:
            holds, _ = apply_detection(INDEX, holds, Detection("street-0", pole, now))
        result = decide_tick(
            INDEX,
            NIGHTS,
            traffic,
            {sid: TrafficSample(now, count) for sid in INDEX.segments},
            holds,
            [],
            now,
        )
        traffic = result.traffic
        for dec in result.decisions.values():
            seg = result.segments[dec.segment_id]
            floor = floor_pct(INDEX.segments[dec.segment_id].classing)
            if seg.program_pct > 0:
                assert floor <= dec.level_pct <= 100.0
            else:
                assert dec.level_pct == 0.0


def test_nights_covering_switches_at_local_noon_and_reuses_the_rest() -> None:
    before_noon = datetime(2026, 1, 15, 10, 59, tzinfo=UTC)  # 11:59 CET
    nights = nights_covering(INDEX, PROGRAMS, before_noon, NIGHTS)
    assert all(nights[sid] is NIGHTS[sid] for sid in INDEX.segments)
    after_noon = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
    next_nights = nights_covering(INDEX, PROGRAMS, after_noon, nights)
    assert {n.night for n in next_nights.values()} == {date(2026, 1, 15)}
    assert decide_tick(INDEX, next_nights, {}, {}, {}, [], after_noon).decisions


def test_a_tick_with_the_previous_one_decides_the_same_and_reuses_unchanged_segments() -> None:
    first = tick(EVENING)
    holds, _ = apply_detection(INDEX, {}, Detection("street-0", 3, EVENING, direction=1))
    for now in (EVENING + timedelta(seconds=10), datetime(2026, 1, 14, 21, 1, tzinfo=UTC)):
        fresh = decide_tick(INDEX, NIGHTS, {}, {}, holds, [], now)
        again = decide_tick(INDEX, NIGHTS, {}, {}, holds, [], now, previous=first)
        assert again.decisions == fresh.decisions
        assert again.plain == fresh.plain
    held = decide_tick(INDEX, NIGHTS, {}, {}, holds, [], EVENING + timedelta(seconds=10), first)
    assert INDEX.luminaires["lum-0-3"].segment_id not in held.plain  # has its own chains
    same = decide_tick(INDEX, NIGHTS, {}, {}, {}, [], EVENING + timedelta(seconds=5), first)
    assert same.decisions["lum-1-1"] is first.decisions["lum-1-1"]  # reused, not rebuilt
