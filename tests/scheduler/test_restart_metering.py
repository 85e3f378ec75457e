"""A restart never books energy twice (SQLite and PostgreSQL, real Modbus simulators, a real
broker, the real service on a simulated clock).

1. The service is stopped and started again on the same database while the meters go on
   counting (a real site): every quarter-hour is booked once, and the day's intervals sum to
   the counter's growth.
2. The demo's restart: the town starts again at the same morning with its meters at their
   initial counters, on the database of the first run. Its readings interleave with the
   stored ones and fall by a few Wh here and there (the simulated meter integrates power at
   the instants it is asked, so two runs differ by how the reads fell); each fall was billed
   as a reset of the whole register (phantom quarter-hours of 17,325 kWh were measured). The
   test makes the fall certain rather than left to timing: the second run's meter starts
   50 Wh below the first's. Now no quarter-hour exceeds what the connection can carry, the
   falls are quarantined with one alarm per meter, and the booked energy stays within the
   counters' span.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.service import Service
from kernel.clock import SimClock
from kernel.readings import Reading
from scheduler.metering_job import EXPORT_CHANNEL, IMPORT_CHANNEL, MeteringJob
from scheduler.site import Site
from scheduler.site.ratings import device_facts
from sims.modbus.meters import Sdm630Sim
from store import Store
from tests.conftest import BrokerAddress
from tests.scheduler.test_service import settings_for, small_fleet, small_site
from vpp.metering.plausibility import TOLERANCE_WH

START = datetime(2026, 6, 21, 6, 0, tzinfo=UTC)  # 08:00 in Berlin, PV and load
QH = timedelta(minutes=15)
SPEED = 600.0
BEHIND_WH = 50.0


async def run_until(clock: SimClock, until: datetime) -> None:
    while clock.now() < until:  # noqa: ASYNC110 -- the service runs meanwhile
        await asyncio.sleep(0.05)


def interpolated(readings: list[Reading], t: datetime) -> Decimal:
    """The counter at ``t``: a reading there, or linear between the readings either side."""
    before = [r for r in readings if r.ts <= t]
    after = [r for r in readings if r.ts >= t]
    a, b = before[-1], after[0]
    assert a.value is not None
    assert b.value is not None
    if a.ts == b.ts:
        return Decimal(round(a.value))
    share = Decimal((t - a.ts) / (b.ts - a.ts))
    return Decimal(round(a.value)) + (Decimal(round(b.value)) - Decimal(round(a.value))) * share


async def booked(store: Store, site: Site, end: datetime) -> dict[str, dict[datetime, Decimal]]:
    """The newest version of every interval of h1, by channel (after a final metering)."""
    await MeteringJob(store, site).close_quarter_hours(end)
    out: dict[str, dict[datetime, Decimal]] = {}
    for channel in (IMPORT_CHANNEL, EXPORT_CHANNEL):
        rows = await store.intervals.for_member("h1", START, end, channel)
        out[channel] = {r.interval.interval_start: r.interval.energy_wh for r in rows}
    return out


async def test_a_restart_books_every_quarter_hour_once(
    mqtt_broker: BrokerAddress, unique: str, db_url: str
) -> None:
    clock = SimClock(START, speed=SPEED)
    async with small_fleet(clock) as fleet:
        site = small_site(fleet)
        settings = settings_for(db_url, mqtt_broker, unique)
        async with Service(settings, site, clock):
            await run_until(clock, START + timedelta(minutes=50))
        # down for 10 minutes (mid quarter-hour), the meters go on counting
        await run_until(clock, START + timedelta(minutes=60))
        async with Service(settings, site, clock):
            await run_until(clock, START + timedelta(minutes=125))
        end = clock.now()
        async with Store(db_url) as store:
            got = await booked(store, site, end)
            readings = {
                ch: await store.readings.between("h1-meter", ch, START, end)
                for ch in (IMPORT_CHANNEL, EXPORT_CHANNEL)
            }
            assert await store.quarantine.counts() == {}
    for channel, intervals in got.items():
        starts = sorted(intervals)
        assert len(starts) >= 7, channel
        assert starts == [starts[0] + k * QH for k in range(len(starts))], "a hole"
        first, last = starts[0], starts[-1] + QH
        growth = interpolated(readings[channel], last) - interpolated(readings[channel], first)
        # each quarter-hour booked once: the intervals sum to the counter's growth (whole Wh,
        # each boundary rounded down once)
        assert abs(sum(intervals.values()) - growth) <= 1, channel


async def test_the_demo_restart_on_the_same_database_books_no_phantom_energy(
    mqtt_broker: BrokerAddress, unique: str, db_url: str
) -> None:
    settings = settings_for(db_url, mqtt_broker, unique)
    end = START + timedelta(minutes=65)
    for run in range(2):  # the same morning twice, the meters starting over each time
        clock = SimClock(START, speed=SPEED)
        async with small_fleet(clock) as fleet:
            site = small_site(fleet)
            meter = fleet.sim("h1-meter")
            assert isinstance(meter, Sdm630Sim)
            if run == 1:  # behind the stored counters by more than a register's jitter
                meter.import_wh -= BEHIND_WH
                meter.export_wh -= BEHIND_WH
            async with Service(settings, site, clock):
                await run_until(clock, end)
    rating_w = device_facts(site)["h1-meter"].rating_w
    assert rating_w is not None
    async with Store(db_url) as store:
        got = await booked(store, site, end)
        stored = {
            ch: await store.readings.between("h1-meter", ch, START, end + QH)
            for ch in (IMPORT_CHANNEL, EXPORT_CHANNEL)
        }
        quarantined = await store.quarantine.counts()
        alarms = [a.alarm_key for a in await store.alarms.active()]
    most_wh = Decimal(rating_w * 1.1 / 4 + 10)  # a quarter-hour at the connection's rating
    for channel, intervals in got.items():
        assert intervals, channel
        assert max(intervals.values()) <= most_wh, channel
        values = [r.value for r in stored[channel] if r.value is not None]
        highest = itertools.accumulate(values, max)
        # the stored counter never falls (but for a float register's last digit)
        assert all(v >= top - TOLERANCE_WH for v, top in zip(values, highest, strict=True))
        assert sum(intervals.values()) <= Decimal(round(values[-1] - values[0])) + 1
    assert quarantined.get("counter_decrease", 0) > 0
    assert "plausibility:h1-meter:counter_decrease" in alarms
    assert alarms.count("plausibility:h1-meter:counter_decrease") == 1
