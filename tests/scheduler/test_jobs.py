"""APScheduler jobs on a simulated clock: aligned to local quarter-hours, missed runs coalesced."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kernel.clock import SimClock
from scheduler.jobs import ClockedScheduler, daily_trigger, describe, quarter_hour_trigger

BERLIN = ZoneInfo("Europe/Berlin")


async def test_quarter_hour_jobs_fire_on_the_simulated_clock_aligned_to_the_site() -> None:
    # 1 real second = 1 simulated hour: four quarter-hours per real second
    start = datetime(2026, 3, 29, 0, 50, tzinfo=UTC)  # spring-forward morning in Berlin
    clock = SimClock(start, speed=3600)
    fired: list[datetime] = []

    async def job() -> None:
        fired.append(clock.now())

    sched = ClockedScheduler(clock)
    sched.add_clocked_job(job, quarter_hour_trigger("Europe/Berlin", offset_s=5), "dispatch")
    sched.start()
    try:
        for _ in range(100):
            if len(fired) >= 5:
                break
            await asyncio.sleep(0.05)
    finally:
        sched.shutdown(wait=False)
    assert len(fired) >= 5
    for ts in fired:
        local = ts.astimezone(BERLIN)
        assert local.minute % 15 == 0, local
        # fired at (or just after) hh:mm:05 simulated; allow for event-loop latency at 3600x
        assert 5 <= local.second + 60 * (local.minute % 15) <= 5 + 120
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fired)]
    assert all(600 <= g <= 1200 for g in gaps), gaps


def test_daily_trigger_follows_local_wall_time_across_dst() -> None:
    trig = daily_trigger("Europe/Berlin", hour=15)
    before = datetime(2026, 3, 27, 16, 0, tzinfo=UTC)
    first = trig.get_next_fire_time(None, before)
    second = trig.get_next_fire_time(first, first + timedelta(seconds=1))
    assert first.astimezone(BERLIN).hour == 15
    assert second.astimezone(BERLIN).hour == 15
    # the spring-forward day is 23 h long (same-zone datetimes subtract as wall time: use UTC)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=23)


async def test_missed_runs_are_coalesced_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    start = datetime(2026, 6, 1, 9, 59, tzinfo=UTC)
    clock = SimClock(start, speed=3600)
    runs: list[datetime] = []

    async def job() -> None:
        runs.append(clock.now())

    sched = ClockedScheduler(clock)
    sched.add_clocked_job(job, quarter_hour_trigger("Europe/Berlin"), "settle")
    with caplog.at_level(logging.WARNING, logger="scheduler.jobs"):
        # block the event loop on purpose: ~48 simulated minutes pass, 3 runs are missed
        time.sleep(0.8)  # noqa: ASYNC251
        sched.start()
        try:
            for _ in range(40):
                if runs:
                    break
                await asyncio.sleep(0.01)
        finally:
            sched.shutdown(wait=False)
    assert len(runs) == 1
    assert sched.missed_runs["settle"] >= 2
    assert any("coalesced" in r.getMessage() for r in caplog.records)
    assert describe(sched)[0]["id"] == "settle"


def test_offset_must_stay_inside_the_quarter_hour() -> None:
    with pytest.raises(ValueError, match="offset_s"):
        quarter_hour_trigger("Europe/Berlin", offset_s=900)
