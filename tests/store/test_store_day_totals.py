"""Day totals: built once per zone from every interval, then kept by every write, for every
listed zone (also one with a half-hour offset), whatever the writer's own zone."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kernel.readings import Quality
from store import Store
from store.day_totals import DayTotal, local_slot
from store.intervals import Interval

NOW = datetime(2026, 4, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
ZONES = ("Europe/Berlin", "Asia/Kolkata")
START = datetime(2026, 3, 28, 20, tzinfo=UTC)  # over the spring-forward night in Berlin


async def expected(store: Store, zone: str, member: str) -> list[DayTotal]:
    """The totals computed from the newest interval versions, in Python."""
    tz = ZoneInfo(zone)
    acc: dict[tuple[date, str], list[object]] = {}
    stored = await store.intervals.for_member(member, START - QH, START + timedelta(days=4))
    for s in stored:
        day, slot = local_slot(s.interval.interval_start, tz)
        a = acc.setdefault((day, s.interval.channel), [Decimal(0), 0, 0])
        a[0] += s.interval.energy_wh  # type: ignore[operator]
        a[1] |= 1 << slot  # type: ignore[operator]
        if s.interval.quality is not Quality.GOOD:
            a[2] |= 1 << slot  # type: ignore[operator]
    return [
        DayTotal(day, channel, a[0], a[1], a[2])  # type: ignore[arg-type]
        for (day, channel), a in sorted(acc.items())
    ]


async def write_history(store: Store, rng: random.Random) -> None:
    first = [
        Interval(m, ch, START + q * QH, Decimal(rng.randrange(1000)),
                 Quality.SUBSTITUTE if rng.random() < 0.1 else Quality.GOOD)
        for m in ("m1", "m2") for ch in ("import_energy_wh", "export_energy_wh")
        for q in range(3 * 96) if rng.random() < 0.95
    ]  # fmt: skip
    for k in range(0, len(first), 97):  # in batches, as metering writes them
        await store.intervals.record(first[k : k + 97], now=NOW)
    again = [
        Interval(i.member_id, i.channel, i.interval_start, i.energy_wh + 1,
                 Quality.GOOD if i.quality is Quality.SUBSTITUTE else Quality.SUBSTITUTE)
        for i in first if rng.random() < 0.1
    ]  # fmt: skip
    await store.intervals.record(again + again[:5], now=NOW)  # a key twice in one batch


async def test_every_listed_zone_is_kept_by_writes(store: Store) -> None:
    for zone in ZONES:
        assert await store.day_totals.ensure_zone(zone, now=NOW) == 0  # nothing to build
        assert await store.day_totals.ensure_zone(zone, now=NOW) == 0  # and idempotent
    await write_history(store, random.Random(5))
    for zone in ZONES:
        for member in ("m1", "m2"):
            got = await store.day_totals.for_member(
                zone, member, date(2026, 3, 1), date(2026, 5, 1)
            )
            assert got == await expected(store, zone, member), (zone, member)
            assert any(t.substitute for t in got)


async def test_a_zone_built_late_equals_one_kept_from_the_start(
    store: Store, open_store: object
) -> None:
    await store.day_totals.ensure_zone("Europe/Berlin", now=NOW)
    await write_history(store, random.Random(9))
    kept = await store.day_totals.for_member(
        "Europe/Berlin", "m1", date(2026, 3, 1), date(2026, 5, 1)
    )
    read = await store.day_totals.ensure_zone("Asia/Kolkata", now=NOW)
    assert read > 0  # every version was read
    built = await store.day_totals.for_member(
        "Asia/Kolkata", "m1", date(2026, 3, 1), date(2026, 5, 1)
    )
    assert built == await expected(store, "Asia/Kolkata", "m1")
    assert kept == await expected(store, "Europe/Berlin", "m1")
    # the spring-forward day in Berlin has 92 quarter-hours
    day = [t for t in kept if t.day == date(2026, 3, 29) and t.channel == "import_energy_wh"]
    assert max(day[0].present.bit_length() for _ in day) <= 92
    # another process opening the same database learns the zones from it
    other = open_store()  # type: ignore[operator]
    async with other:
        assert not other.day_totals.is_complete("Asia/Kolkata")
        assert await other.day_totals.complete_zones() == {"Europe/Berlin", "Asia/Kolkata"}
        assert other.day_totals.is_complete("Asia/Kolkata")


async def test_an_unknown_zone_is_refused_by_name(store: Store) -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        await store.day_totals.ensure_zone("Mars/Olympus", now=NOW)
    assert await store.day_totals.complete_zones() == set()
