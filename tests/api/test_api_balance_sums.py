"""The day and month views sum in the database (the store's day totals, or the intervals in
SQL); the figures must be the very ones the row-by-row path gives (every interval read and
bucketed in Python, every statement read with the store's own ``member_statements``). Random
histories on SQLite and PostgreSQL: the October DST day (100 quarter-hours), restatements
(versions 2 and 3 of some intervals), substitute values in one channel only, quarter-hours
with only one channel, another member's data, and settlement periods with many versions
(provisional quarter-hours and days, final days, restatements)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from api.periods import PeriodQuery
from api.routers.members import member_buckets
from kernel.readings import Quality
from store import Store
from store.intervals import Interval
from store.settlement import Statement
from vpp.settlement.balances import Resolution, SettledPeriod, bucketise

BERLIN = ZoneInfo("Europe/Berlin")
QH = timedelta(minutes=15)
NOW = datetime(2026, 11, 30, tzinfo=UTC)
FIRST = date(2026, 10, 23)
DAYS = 6  # through the night of 24/25 October (100 quarter-hours)
CHANNELS = ("import_energy_wh", "export_energy_wh")


def local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=BERLIN).astimezone(UTC)


def statement(member: str, rng: random.Random) -> Statement:
    wh = [Decimal(rng.randrange(0, 50_000)) + Decimal(rng.randrange(1000)) / 1000 for _ in range(6)]
    return Statement(
        member_id=member,
        consumption_wh=wh[0],
        generation_wh=wh[1],
        shared_received_wh=wh[2],
        shared_delivered_wh=wh[3],
        grid_import_wh=wh[4],
        grid_export_wh=wh[5],
        amount_eur=Decimal(rng.randrange(-500_000, 500_000)) / 10_000,
        co2_g=Decimal(rng.randrange(100_000)),
    )


async def history(store: Store, rng: random.Random) -> None:
    start, end = local_midnight(FIRST), local_midnight(FIRST + timedelta(days=DAYS))
    n = int((end - start) / QH)
    rows = []
    for member in ("m01", "m02"):
        for q in range(n):
            t = start + q * QH
            for channel in CHANNELS:
                if rng.random() < 0.03:  # a quarter-hour this channel never got
                    continue
                quality = Quality.SUBSTITUTE if rng.random() < 0.05 else Quality.GOOD
                energy = Decimal(rng.randrange(0, 900)) + Decimal(rng.randrange(1000)) / 1000
                rows.append(Interval(member, channel, t, energy, quality))
    await store.intervals.record(rows, now=NOW)
    for _ in range(2):  # restatements: versions 2 and 3 of some of m01's intervals
        again = [
            Interval(iv.member_id, iv.channel, iv.interval_start, iv.energy_wh + 7,
                     Quality.GOOD if rng.random() < 0.5 else Quality.SUBSTITUTE)
            for iv in rows
            if iv.member_id == "m01" and rng.random() < 0.05
        ]  # fmt: skip
        await store.intervals.record(again, now=NOW)
    for d in range(DAYS):
        day_start = local_midnight(FIRST + timedelta(days=d))
        day_end = local_midnight(FIRST + timedelta(days=d + 1))
        for k in range(rng.randrange(1, 5)):  # versions of the day (provisional, final, ...)
            await store.settlement.append(
                "c1", day_start, day_end, [statement("m01", rng), statement("m02", rng)],
                reason=f"version {k}", now=NOW,
            )  # fmt: skip
        for q in rng.sample(range(92), 3):  # quarter-hour periods, some in several versions
            qh = day_start + q * QH
            for _ in range(rng.randrange(1, 3)):
                await store.settlement.append(
                    "c1", qh, qh + QH, [statement("m01", rng)], reason="qh", now=NOW
                )
        if d == 2:  # another community's day: the member is not in it
            await store.settlement.append(
                "c2", day_start, day_end, [statement("m02", rng)], reason="other", now=NOW
            )


async def row_by_row(store: Store, member: str, period: PeriodQuery) -> list[object]:
    intervals = await store.balances.intervals(member, period.start_utc, period.end_utc)
    statements = await store.settlement.member_statements(member, period.start_utc, period.end_utc)
    periods = [SettledPeriod(run.period_start, run.period_end, st) for run, st in statements]
    return bucketise(period.resolution, period.start, period.end, period.tz, intervals, periods)


@pytest.mark.parametrize(
    ("seed", "totals"),
    [(1, "none"), (2, "none"), (1, "built"), (2, "built"), (3, "kept"), (4, "kept")],
)
async def test_database_sums_equal_the_row_by_row_figures(
    store: Store, seed: int, totals: str
) -> None:
    """``none``: no day totals, the intervals are summed in SQL; ``built``: the totals are
    built from the finished history; ``kept``: they exist before, every write keeps them."""
    rng = random.Random(seed)
    if totals == "kept":
        assert await store.day_totals.ensure_zone(BERLIN.key, now=NOW) == 0
    await history(store, rng)
    if totals == "built":
        assert await store.day_totals.ensure_zone(BERLIN.key, now=NOW) > 0
    assert store.day_totals.is_complete(BERLIN.key) is (totals != "none")
    for resolution, first, end in [
        (Resolution.DAY, FIRST, FIRST + timedelta(days=DAYS)),
        (Resolution.DAY, FIRST + timedelta(days=2), FIRST + timedelta(days=3)),  # the 100-qh day
        (Resolution.MONTH, date(2026, 10, 1), date(2026, 12, 1)),
    ]:
        period = PeriodQuery(resolution, first, end, BERLIN)
        summed = await member_buckets(store, "m01", period)
        expected = await row_by_row(store, "m01", period)
        assert summed == expected, (resolution, first, end)
        assert any(b.substitute_quarter_hours for b in summed)
        assert any(b.settled for b in summed)
    [dst_day] = await member_buckets(
        store, "m01", PeriodQuery(Resolution.DAY, date(2026, 10, 25), date(2026, 10, 26), BERLIN)
    )
    assert dst_day.quarter_hours <= 100


async def test_settled_periods_pick_the_newest_version_of_each_period(store: Store) -> None:
    rng = random.Random(7)
    await history(store, rng)
    start, end = local_midnight(FIRST), local_midnight(FIRST + timedelta(days=DAYS))
    lean = await store.balances.settled_periods("m01", start, end)
    full = await store.settlement.member_statements("m01", start, end)
    assert [(p.start, p.end, p.statement) for p in lean] == [
        (run.period_start, run.period_end, Statement(**{**vars_of(st), "details": {}}))
        for run, st in full
    ]
    assert lean  # the history has settled periods
    assert await store.balances.settled_periods("m03", start, end) == []


def vars_of(s: Statement) -> dict[str, object]:
    return {f: getattr(s, f) for f in Statement.__dataclass_fields__}
