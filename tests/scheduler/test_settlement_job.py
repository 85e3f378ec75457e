"""The settlement job on a real store, from meter readings as meters deliver them.

The central test: several households over one local day (a DST day with 100 quarter-hours),
one meter with a gap, one with a counter reset, one producer, one meter that never answered.
Metering closes the quarter-hours, the provisional and the final runs settle them, and every
member's statement reconciles *exactly* with the meter's counters; shared energy received and
delivered sum to the community totals.
"""

from __future__ import annotations

import itertools
import math
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from kernel.errors import ConfigError
from kernel.quarterhours import local_day_bounds
from kernel.readings import Quality, Reading
from scheduler.metering_job import EXPORT_CHANNEL, IMPORT_CHANNEL, MeteringJob
from scheduler.settlement_job import SettlementJob
from store import Store
from store.intervals import Interval
from store.settlement import SettlementRun, Statement
from tests.scheduler.test_metering_job import (
    counter,
    growth_wh,
    household,
    make_site,
    pv_surplus,
    without,
)
from vpp.settlement.statement import round_eur

BERLIN_DST_END = date(2026, 10, 25)  # clocks go back: 100 quarter-hours
BERLIN_DST_START = date(2026, 3, 29)  # clocks go forward: 92 quarter-hours
QH = timedelta(minutes=15)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    return local_day_bounds(day)


def meter(
    member: str, start: datetime, end: datetime, load_w: float, pv_w: float, seed: int, **kw: object
) -> tuple[list[Reading], list[Reading]]:
    device = f"{member}-meter"
    imp = counter(device, IMPORT_CHANNEL, start, end, household(load_w, seed), **kw)  # type: ignore[arg-type]
    exp = counter(device, EXPORT_CHANNEL, start, end, pv_surplus(pv_w), start_wh=50_000)
    return imp, exp


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - t0[0], cpu - t0[1]


def both(channels: tuple[list[Reading], list[Reading]]) -> list[Reading]:
    return [*channels[0], *channels[1]]


def statement(run: SettlementRun, member_id: str) -> Statement:
    return next(s for s in run.statements if s.member_id == member_id)


def check_reconciles(run: SettlementRun, expected: dict[str, tuple[int, int]]) -> None:
    """Statements equal the meters' counter growth and the sum of their own quarter-hours;
    shared energy balances across the community."""
    for member_id, (imported, exported) in expected.items():
        s = statement(run, member_id)
        assert (s.consumption_wh, s.generation_wh) == (Decimal(imported), Decimal(exported))
        lines = s.details["lines"]
        assert len(lines["qh_start"]) == run.details["quarter_hours"]
        assert sum(lines["consumption_wh"]) == imported
        assert sum(lines["generation_wh"]) == exported
        assert sum(lines["received_wh"]) == s.shared_received_wh
        assert sum(lines["delivered_wh"]) == s.shared_delivered_wh
        assert all(
            r <= c for r, c in zip(lines["received_wh"], lines["consumption_wh"], strict=True)
        )
        assert s.grid_import_wh == s.consumption_wh - s.shared_received_wh
        assert s.grid_export_wh == s.generation_wh - s.shared_delivered_wh
    totals = run.details["totals_wh"]
    received = sum(s.shared_received_wh for s in run.statements)
    delivered = sum(s.shared_delivered_wh for s in run.statements)
    assert received == delivered == totals["received_wh"] == totals["delivered_wh"]
    assert sum(s.consumption_wh for s in run.statements) == totals["consumption_wh"]
    assert sum(s.generation_wh for s in run.statements) == totals["generation_wh"]
    assert received > 0


async def test_a_dst_day_settles_exactly_to_the_meters(store: Store) -> None:
    day = BERLIN_DST_END
    start, end = day_bounds(day)
    assert end - start == 25 * timedelta(hours=1)
    members = ["h01", "h02", "h03", "p04", "h05"]
    gap = (start + timedelta(hours=9, minutes=7), start + timedelta(hours=10, minutes=23))
    # h03's meter is exchanged at 14:02:30; the new one starts at 0, and the exchange is
    # recorded in the site file with the old meter's last reading as its final value
    reset = start + timedelta(hours=14, minutes=2, seconds=30)
    streams = {
        "h01": meter("h01", start, end, 450, 1500, 1),
        "h02": meter("h02", start, end, 700, 0, 2),
        "h03": meter("h03", start, end, 380, 800, 3, reset_at=reset),
        "p04": meter("p04", start, end, 60, 9000, 4),
    }
    old_meter = [r for r in streams["h03"][0] if r.ts <= reset]
    new_meter = [r for r in streams["h03"][0] if r.ts > reset]
    exchange = {
        "at": reset.isoformat(),
        "old_final_wh": {IMPORT_CHANNEL: int(old_meter[-1].value or 0)},
        "new_initial_wh": {IMPORT_CHANNEL: 0},
    }
    site = make_site(members, exchanges={"h03": [exchange]})
    delivered = {
        m: (without(i, *gap), e) if m == "h02" else (i, e) for m, (i, e) in streams.items()
    }
    metering = MeteringJob(store, site)
    settlement = SettlementJob(store, site, cache=metering.cache)

    # the morning: readings until 12:00 UTC, closed and settled provisionally
    noon = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)
    await store.readings.write(
        [r for i, e in delivered.values() for r in (*i, *e) if r.ts <= noon], now=noon
    )
    await metering.close_quarter_hours(noon + timedelta(seconds=5))
    morning = await settlement.provisional("quartier", day, noon + timedelta(seconds=10))
    assert morning is not None
    assert morning.version == 1
    assert morning.reason.startswith("provisional")
    assert morning.details["kind"] == "provisional"
    assert not morning.details["complete"]
    assert morning.details["through"] == noon.isoformat()
    assert morning.details["quarter_hours"] == (noon - start) // QH
    assert morning.details["missing_members"] == ["h05"]
    assert statement(morning, "h02").details["substitute_quarter_hours"]["L2"] > 0
    # nothing new: the same run, no new version
    again = await settlement.provisional("quartier", day, noon + timedelta(minutes=1))
    assert again is not None
    assert again.id == morning.id

    # the rest of the day; the final run at 01:00 the next day
    await store.readings.write(
        [r for i, e in delivered.values() for r in (*i, *e) if r.ts > noon], now=end
    )
    await metering.close_quarter_hours(end + timedelta(seconds=5))
    final = await settlement.final("quartier", day, end + timedelta(hours=1))
    assert final.version == 2
    assert final.reason == "final"
    assert final.details["quarter_hours"] == 100
    assert final.details["complete"]
    expected = {
        m: (growth_wh(i, start, end), growth_wh(e, start, end))
        for m, (i, e) in streams.items()
        if m != "h03"
    }
    # h03: the old meter's growth to its final value, then the new one's from 0
    h03_import = growth_wh(old_meter, start, reset) + int(new_meter[-1].value or 0)
    expected["h03"] = (h03_import, growth_wh(streams["h03"][1], start, end))
    check_reconciles(final, expected)
    # the gap was interpolated (L2), the exchange is real (L1), h05 estimated (L3)
    assert final.details["missing_members"] == ["h05"]
    subs = final.details["substitute_quarter_hours"]
    assert subs["h02"]["L2"] >= 5
    assert "h03" not in subs
    assert subs["h05"] == {"L2": 0, "L3": 100}
    assert "h01" not in subs
    assert "p04" not in subs
    h05 = statement(final, "h05")
    assert h05.consumption_wh == 0
    assert h05.details["quality"] == "L3"
    assert final.details["quality"] == "L3"
    # money: rounded once from the exact net
    h01 = statement(final, "h01")
    assert h01.amount_eur == round_eur(Decimal(h01.details["net_exact_eur"]))

    # the final run again: unchanged inputs, no new version
    same = await settlement.final("quartier", day, end + timedelta(hours=2))
    assert same.id == final.id
    assert len(await store.settlement.versions("quartier", start, end)) == 2
    # and a provisional run after the final one does not replace it
    late_provisional = await settlement.provisional("quartier", day, end + timedelta(hours=2))
    assert late_provisional is not None
    assert late_provisional.id == final.id

    # h02's buffered readings arrive: metering restates the gap, the final run is restated
    await store.readings.write(streams["h02"][0], now=end + timedelta(hours=3))
    await metering.close_quarter_hours(end + timedelta(hours=3))
    restated = await settlement.final("quartier", day, end + timedelta(hours=3))
    assert restated.version == 3
    assert restated.reason == "restatement"
    assert restated.details["restates_version"] == 2
    assert "h02" not in restated.details["substitute_quarter_hours"]
    check_reconciles(restated, expected)  # the counter's growth is the same, the split finer
    changed = restated.details["changes"]
    assert set(changed) <= set(members)
    # a fresh job (service restarted) finds the newest version in the store: nothing new
    fresh = SettlementJob(store, site)
    assert (await fresh.final("quartier", day, end + timedelta(hours=4))).id == restated.id
    # member views: the newest version of the day only
    rows = await store.settlement.member_statements("h01", start, end)
    assert [(r.version, s.consumption_wh) for r, s in rows] == [(3, Decimal(expected["h01"][0]))]


def counter_at(readings: list[Reading], t: datetime) -> Fraction:
    """The counter at ``t``, linear between the readings either side (exact)."""
    for a, b in itertools.pairwise(readings):
        if a.ts <= t <= b.ts:
            va, vb = Fraction(round(a.value or 0)), Fraction(round(b.value or 0))
            us = timedelta(microseconds=1)
            return va + (vb - va) * Fraction((t - a.ts) // us, (b.ts - a.ts) // us)
    raise AssertionError(f"no readings around {t}")


async def test_a_spring_forward_day_has_92_quarter_hours_and_reconciles(store: Store) -> None:
    """Readings every 70 s, none on the day's boundaries: the day's energy is the counter
    difference between local midnights, interpolated there (and rounded down, as metering
    rounds the counter at a boundary)."""
    day = BERLIN_DST_START
    start, end = day_bounds(day)
    site = make_site(
        ["a1", "a2", "a3"], key={"kind": "static", "shares": {"a1": "0.5", "a2": "0.3"}}
    )
    first, last = start - timedelta(seconds=33), end + timedelta(minutes=3)
    streams = {
        "a1": meter("a1", first, last, 500, 0, 1, step_s=70),
        "a2": meter("a2", first, last, 300, 2500, 2, step_s=70),
        "a3": meter("a3", first, last, 200, 6000, 3, step_s=70),
    }
    assert not any(r.ts in (start, end) for i, _ in streams.values() for r in i)
    await store.readings.write([r for i, e in streams.values() for r in (*i, *e)], now=last)
    await MeteringJob(store, site).close_quarter_hours(last + timedelta(seconds=5))
    run = await SettlementJob(store, site).final("quartier", day, last + timedelta(minutes=5))
    assert run.details["quarter_hours"] == 92
    assert run.details["substitute_quarter_hours"] == {}
    assert run.details["quality"] == "L1"

    def difference(readings: list[Reading]) -> int:
        return math.floor(counter_at(readings, end)) - math.floor(counter_at(readings, start))

    check_reconciles(run, {m: (difference(i), difference(e)) for m, (i, e) in streams.items()})
    # static key: a3 holds no share and receives nothing
    assert statement(run, "a3").shared_received_wh == 0


async def test_provisional_runs_settle_what_metering_has_closed(store: Store) -> None:
    day = date(2026, 6, 10)
    start, _ = day_bounds(day)
    site = make_site(["h01", "h02"])
    t = start + timedelta(hours=10)
    readings = [
        *both(meter("h01", start, t, 400, 3000, 1)),
        *both(meter("h02", start, t - timedelta(hours=1), 400, 0, 2)),  # silent for an hour
    ]
    await store.readings.write(readings, now=t)
    await MeteringJob(store, site).close_quarter_hours(t + timedelta(seconds=5))
    job = SettlementJob(store, site)
    assert job.last_closed_day(start + timedelta(seconds=5)) == day - timedelta(days=1)
    assert job.last_closed_day(t + timedelta(seconds=5)) == day

    # 5 minutes into a quarter-hour nobody's reading has closed: through the metered end
    run = await job.provisional("quartier", day, t + timedelta(minutes=20))
    assert run is not None
    assert run.details["through"] == t.isoformat()
    assert run.details["quarter_hours"] == 40
    assert run.details["substitute_quarter_hours"] == {"h02": {"L2": 0, "L3": 4}}
    assert run.details["missing_members"] == []
    assert "lines" not in statement(run, "h01").details  # provisional runs carry totals only
    # before any quarter-hour of the day is metered there is nothing to settle
    assert await job.provisional("quartier", day + timedelta(days=1), t + timedelta(days=1)) is None


async def test_a_member_who_joins_at_noon_is_settled_from_noon_at_its_participation(
    store: Store,
) -> None:
    day = date(2026, 6, 10)
    start, end = day_bounds(day)
    noon = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    site = make_site(
        ["h01", "p02"],
        membership={"h01": {"joined": noon.isoformat(), "participation_pct": 50}},
    )
    h01 = meter("h01", noon, end, 600, 0, 1, step_s=300)  # the meter installed at noon
    p02 = meter("p02", start, end, 50, 8000, 2, step_s=300)
    await store.readings.write([*both(h01), *both(p02)], now=end)
    await MeteringJob(store, site).close_quarter_hours(end + timedelta(seconds=5))
    run = await SettlementJob(store, site).final("quartier", day, end + QH)
    s = statement(run, "h01")
    lines = s.details["lines"]
    assert lines["qh_start"][0] == noon.isoformat()
    assert len(lines["qh_start"]) == (end - noon) // QH
    assert run.details["missing_members"] == []
    assert run.details["substitute_quarter_hours"] == {}
    # half of each quarter-hour's metered Wh, rounded down per quarter-hour
    metered = await store.intervals.for_member("h01", noon, end, IMPORT_CHANNEL)
    assert lines["consumption_wh"] == [int(i.interval.energy_wh) // 2 for i in metered]
    assert s.details["participation_pct"] == 50
    assert s.shared_received_wh > 0


async def test_estimates_come_from_the_same_quarter_hour_a_week_earlier(store: Store) -> None:
    day = date(2026, 6, 10)
    start, end = day_bounds(day)
    site = make_site(["h01", "h02"])
    week_ago = [
        Interval(m, ch, start - timedelta(days=7) + k * QH, Decimal(100 + k), Quality.GOOD)
        for m in ("h01", "h02")
        for ch in (IMPORT_CHANNEL, EXPORT_CHANNEL)
        for k in range(96)
    ]
    await store.intervals.record(week_ago, now=start)
    today = [
        Interval("h01", ch, start + k * QH, Decimal(7), Quality.GOOD)
        for ch in (IMPORT_CHANNEL, EXPORT_CHANNEL)
        for k in range(96)
    ]
    await store.intervals.record(today, now=end)
    run = await SettlementJob(store, site).final("quartier", day, end)
    h02 = statement(run, "h02")
    assert h02.consumption_wh == sum(100 + k for k in range(96))
    assert h02.details["lines"]["consumption_wh"][:3] == [100, 101, 102]
    assert h02.details["substitute_quarter_hours"] == {"L2": 0, "L3": 96}
    assert run.details["missing_members"] == ["h02"]
    assert statement(run, "h01").consumption_wh == 7 * 96


async def test_bad_calls_are_refused_with_what_is_wrong(store: Store) -> None:
    site = make_site(["h01"])
    job = SettlementJob(store, site)
    day = date(2026, 6, 10)
    _, end = day_bounds(day)
    with pytest.raises(ConfigError, match="unknown community 'nirgendwo'") as err:
        await job.final("nirgendwo", day, end + QH)
    assert err.value.field == "community_id"
    with pytest.raises(ConfigError, match="nirgendwo"):
        await job.provisional("nirgendwo", day, end)
    with pytest.raises(ValueError, match="2026-06-10: the day ends at"):
        await job.final("quartier", day, end - QH)
    # a community whose meters never answered: the final run lists them all as missing
    run = await job.final("quartier", day, end)
    assert run.details["missing_members"] == ["h01"]
    assert statement(run, "h01").consumption_wh == 0


async def test_sixty_members_one_day_well_under_a_second_each_on_sqlite(tmp_path: Path) -> None:
    members = [f"m{i:02d}" for i in range(60)]
    site = make_site(members)
    day = date(2026, 6, 10)
    start, end = day_bounds(day)
    now = start + timedelta(hours=16)

    def intervals(first: int, stop: int) -> list[Interval]:
        return [
            Interval(m, ch, start + k * QH, Decimal(50 + (i * k) % 90), Quality.GOOD)
            for i, m in enumerate(members)
            for ch in (IMPORT_CHANNEL, EXPORT_CHANNEL)
            for k in range(first, stop)
        ]

    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}") as store:
        # the day so far as metered intervals, then raw readings every 5 min
        await store.intervals.record(intervals(0, 62), now=now)
        readings = [
            r
            for i, m in enumerate(members)
            for r in both(meter(m, now - 2 * QH, end, 300 + i, 1000, i, step_s=300))
        ]
        await store.readings.write([r for r in readings if r.ts <= now + QH], now=now)
        metering = MeteringJob(store, site)
        settlement = SettlementJob(store, site, cache=metering.cache)
        # the first calls after a start read the store
        await metering.close_quarter_hours(now + timedelta(seconds=5))
        first = await settlement.provisional("quartier", day, now + timedelta(seconds=6))
        assert first is not None
        assert first.details["quarter_hours"] == 64

        # the next quarter-hour, as the service runs it
        timings: dict[str, tuple[float, float]] = {}  # (wall s, CPU s)
        t0 = clocks()
        appended = await metering.close_quarter_hours(now + QH + timedelta(seconds=5))
        timings["close_quarter_hours"] = since(t0)
        t0 = clocks()
        run = await settlement.provisional("quartier", day, now + QH + timedelta(seconds=6))
        timings["provisional"] = since(t0)
        assert appended == 60 * 2
        assert run is not None
        assert (run.version, run.details["quarter_hours"]) == (2, 65)

        # the rest of the day metered (readings every 5 min); the final run the next night
        await store.readings.write([r for r in readings if r.ts > now + QH], now=end)
        await metering.close_quarter_hours(end + timedelta(seconds=5))
        later = end + timedelta(hours=1)
        t0 = clocks()
        final = await settlement.final("quartier", day, later)
        timings["final"] = since(t0)
        t0 = clocks()
        assert (await settlement.final("quartier", day, later)).id == final.id
        timings["final again"] = since(t0)
        # without the cache (another process, or after a restart) the day is read back
        t0 = clocks()
        assert (await SettlementJob(store, site).final("quartier", day, later)).id == final.id
        uncached = since(t0)
    print({k: f"{w:.3f} s ({c:.3f} s CPU)" for k, (w, c) in timings.items()})
    print(f"final without cache {uncached[0]:.3f} s ({uncached[1]:.3f} s CPU)")
    assert final.details["quarter_hours"] == 96
    assert final.details["substitute_quarter_hours"] == {}
    # CPU time of this process (the database thread included): other processes on a loaded
    # machine stretch the wall time, not the work
    assert max(c for _, c in timings.values()) < 1.0, timings
    assert uncached[1] < 2.0, uncached
