"""The job timer on the injected clock: local quarter-hours and days across DST, missed runs
coalesced, one instance at a time, lateness, stop, and a simulated clock changing speed.

Most tests use a :class:`ManualClock`: the timer moves only when the test advances the clock,
and :func:`settle` lets the event loop run what became due (no wall-clock timing)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kernel.clock import ManualClock, SimClock
from kernel.errors import ConfigError
from scheduler.jobs import (
    ClockedScheduler,
    Trigger,
    daily_trigger,
    describe,
    every,
    guarded,
    once,
    quarter_hour_trigger,
)

BERLIN = ZoneInfo("Europe/Berlin")


async def settle() -> None:
    """Let the timer and the job tasks run what is due now (a few loop iterations)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Recorder:
    """A job that notes the clock's time of each run."""

    def __init__(self, clock: ManualClock | SimClock) -> None:
        self.clock = clock
        self.runs: list[datetime] = []

    async def __call__(self) -> None:
        self.runs.append(self.clock.now())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, 9, 59, tzinfo=UTC))


@pytest.fixture
async def sched(clock: ManualClock) -> AsyncIterator[ClockedScheduler]:
    scheduler = ClockedScheduler(clock)
    scheduler.start()
    yield scheduler
    await scheduler.stop(timeout_s=1.0)


async def advance(clock: ManualClock, seconds: float, step_s: float) -> None:
    """Move the clock in steps, letting due runs happen after each."""
    left = seconds
    while left > 0:
        clock.advance(min(step_s, left))
        left -= step_s
        await settle()


def fire_times(trigger: Trigger, start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    t = trigger.first(start)
    while t is not None and t < end:
        out.append(t)
        t = trigger.after(t)
    return out


@pytest.mark.parametrize(
    ("day", "quarter_hours"),
    [((2026, 3, 29), 92), ((2026, 6, 1), 96), ((2026, 10, 25), 100)],
)
def test_quarter_hours_of_a_local_day_across_dst(
    day: tuple[int, int, int], quarter_hours: int
) -> None:
    start = datetime(*day, tzinfo=BERLIN).astimezone(UTC)
    end = (datetime(*day, tzinfo=BERLIN) + timedelta(days=1)).astimezone(UTC)
    times = fire_times(quarter_hour_trigger("Europe/Berlin", offset_s=65), start, end)
    assert len(times) == quarter_hours
    assert all(t.astimezone(BERLIN).minute % 15 == 1 for t in times)
    assert all(t.astimezone(BERLIN).second == 5 for t in times)
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(times))


def test_daily_trigger_follows_local_wall_time_across_dst() -> None:
    trig = daily_trigger("Europe/Berlin", hour=15)
    first = trig.first(datetime(2026, 3, 27, 16, 0, tzinfo=UTC))
    assert first is not None
    second = trig.after(first)
    assert first == datetime(2026, 3, 28, 14, 0, tzinfo=UTC)  # 15:00 CET
    assert second == datetime(2026, 3, 29, 13, 0, tzinfo=UTC)  # 15:00 CEST, 23 h later


def test_a_daily_time_in_the_gap_fires_at_the_first_valid_instant_after_it() -> None:
    # 2026-03-29 02:30 does not exist in Berlin: the clocks jump from 02:00 CET to 03:00 CEST
    times = fire_times(
        daily_trigger("Europe/Berlin", hour=2, minute=30),
        datetime(2026, 3, 28, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 0, 0, tzinfo=UTC),
    )
    assert times == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 03:00 CEST, the end of the gap
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]


def test_an_ambiguous_daily_time_fires_once_at_its_first_occurrence() -> None:
    # 2026-10-25 02:30 happens twice in Berlin (CEST, then CET an hour later)
    times = fire_times(
        daily_trigger("Europe/Berlin", hour=2, minute=30),
        datetime(2026, 10, 24, 12, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 12, 0, tzinfo=UTC),
    )
    assert times == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST; not 01:30 UTC (02:30 CET)
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


def test_every_is_aligned_to_its_start_and_once_is_one_instant() -> None:
    start = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
    trig = every(60, start)
    assert trig.first(start + timedelta(seconds=61)) == start + timedelta(seconds=120)
    assert trig.first(start - timedelta(hours=1)) == start
    assert trig.after(start + timedelta(seconds=120)) == start + timedelta(seconds=180)
    one = once(start)
    assert one.first(start + timedelta(hours=1)) == start  # passed: it runs at once
    assert one.after(start) is None


def test_bad_trigger_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="offset_s"):
        quarter_hour_trigger("Europe/Berlin", offset_s=900)
    with pytest.raises(ConfigError, match="time zone"):
        quarter_hour_trigger("Europe/Nowhere")
    with pytest.raises(ConfigError, match="25:00"):
        daily_trigger("Europe/Berlin", hour=25)
    with pytest.raises(ConfigError, match="positive"):
        every(0, datetime(2026, 6, 1, tzinfo=UTC))


async def test_quarter_hour_jobs_run_on_the_clock_through_a_dst_day() -> None:
    clock = ManualClock(datetime(2026, 10, 24, 22, 0, 5, tzinfo=UTC))  # 00:00:05 CEST
    scheduler = ClockedScheduler(clock)
    job = Recorder(clock)
    scheduler.add_clocked_job(job, quarter_hour_trigger("Europe/Berlin", offset_s=5), "dispatch")
    scheduler.start()
    try:
        await settle()
        await advance(clock, 25 * 3600 - 900, step_s=900)  # the fall-back day has 25 hours
    finally:
        await scheduler.stop()
    assert len(job.runs) == 100
    assert {(t.astimezone(BERLIN).minute % 15, t.second) for t in job.runs} == {(0, 5)}
    assert len(set(job.runs)) == 100
    assert scheduler.missed_runs == {}
    assert set(scheduler.lateness["dispatch"]) == {0.0}


async def test_missed_runs_are_coalesced_counted_and_logged_once(
    clock: ManualClock, sched: ClockedScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    job = Recorder(clock)
    sched.add_clocked_job(job, quarter_hour_trigger("Europe/Berlin"), "settle")
    with caplog.at_level(logging.WARNING, logger="scheduler.jobs"):
        clock.advance(49 * 60)  # 09:59 → 10:48: due 10:00, 10:15, 10:30 and 10:45
        await settle()
    assert job.runs == [datetime(2026, 6, 1, 10, 48, tzinfo=UTC)]
    assert sched.missed_runs == {"settle": 3}
    assert list(sched.lateness["settle"]) == [180.0]  # the run for 10:45 started at 10:48
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "job settle missed 3 run(s) up to 2026-06-01T10:45:00+00:00; coalesced into one run"
    ]
    assert sched.next_run("settle") == datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
    assert describe(sched) == [
        {"id": "settle", "next_run": "2026-06-01T11:00:00+00:00", "missed": 3}
    ]


async def test_a_run_due_while_the_previous_one_runs_is_skipped(
    clock: ManualClock, sched: ClockedScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()
    started: list[datetime] = []

    async def slow() -> None:
        started.append(clock.now())
        await release.wait()

    sched.add_clocked_job(slow, every(60, clock.now()), "poll")
    await settle()
    assert started == [datetime(2026, 6, 1, 9, 59, tzinfo=UTC)]
    with caplog.at_level(logging.WARNING, logger="scheduler.jobs"):
        clock.advance(60)
        await settle()
    assert len(started) == 1
    assert sched.missed_runs == {"poll": 1}
    assert any("still running" in r.getMessage() for r in caplog.records)
    release.set()
    await settle()
    clock.advance(60)
    await settle()
    assert len(started) == 2  # the next run happens as usual
    assert list(sched.lateness["poll"]) == [0.0, 0.0]


async def test_jobs_added_or_removed_while_running_are_seen_at_once(
    clock: ManualClock, sched: ClockedScheduler
) -> None:
    job = Recorder(clock)
    sched.add_clocked_job(job, once(clock.now()), "start")  # the timer sleeps: woken up
    await settle()
    assert job.runs == [clock.now()]
    assert sched.get_job("start") is None  # a one-off job is gone after its run
    sched.add_clocked_job(job, every(30, clock.now() + timedelta(seconds=30)), "tick")
    scheduled = sched.get_job("tick")
    assert scheduled is not None
    assert scheduled.id == "tick"
    assert scheduled.next_run_time == clock.now() + timedelta(seconds=30)
    sched.remove_job("tick")
    await advance(clock, 120, step_s=10)
    assert len(job.runs) == 1
    assert sched.get_jobs() == []
    with pytest.raises(KeyError):
        sched.remove_job("tick")


async def test_paused_runs_wait_for_resume_and_are_coalesced(
    clock: ManualClock, sched: ClockedScheduler
) -> None:
    job = Recorder(clock)
    sched.add_clocked_job(job, quarter_hour_trigger("Europe/Berlin"), "poll")
    sched.pause()
    await advance(clock, 31 * 60, step_s=60)  # 10:00 and 10:15 and 10:30 come due
    assert job.runs == []
    sched.resume()
    await settle()
    assert job.runs == [datetime(2026, 6, 1, 10, 30, tzinfo=UTC)]
    assert sched.missed_runs == {"poll": 2}


async def test_a_failing_guarded_job_is_counted_and_runs_again(
    clock: ManualClock, sched: ClockedScheduler
) -> None:
    errors: list[tuple[str, str]] = []
    calls: list[datetime] = []

    async def broken() -> None:
        calls.append(clock.now())
        raise RuntimeError("solver crashed")

    def on_error(job_id: str, exc: BaseException) -> None:
        errors.append((job_id, str(exc)))

    job = guarded("mirror", broken, sched, on_error)
    sched.add_clocked_job(job, every(60, clock.now()), "mirror")
    await settle()
    await advance(clock, 120, step_s=60)
    assert len(calls) == 3
    assert errors == [("mirror", "solver crashed")] * 3


async def test_stop_lets_running_jobs_finish_then_cancels_the_rest(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    done: list[str] = []
    never = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def stuck() -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            done.append("stuck cancelled")
            raise

    sched = ClockedScheduler(clock)
    sched.add_clocked_job(quick, once(clock.now()), "quick")
    sched.add_clocked_job(stuck, once(clock.now()), "stuck")
    sched.start()
    await settle()
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert {"job:quick", "job:stuck", "jobs-timer"} <= names
    with caplog.at_level(logging.WARNING, logger="scheduler.jobs"):
        await sched.stop(timeout_s=0.5)
    assert done == ["quick", "stuck cancelled"]
    assert any("job:stuck" in r.getMessage() for r in caplog.records)
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not names & {"job:quick", "job:stuck", "jobs-timer", "jobs-timer-sleep"}


async def test_a_speed_change_of_the_simulated_clock_neither_delays_nor_hastens_runs() -> None:
    start = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    clock = SimClock(start, speed=1.0)
    job = Recorder(clock)
    sched = ClockedScheduler(clock)
    sched.add_clocked_job(job, every(3600, start), "hourly")  # first run at 11:00
    sched.start()
    try:
        await asyncio.sleep(0.1)
        # at speed 1 the run is an hour of real time away, at 36,000x a tenth of a second: a
        # timer still sleeping for the old speed would not run it within the timeout
        clock.set_speed(36_000.0)
        async with asyncio.timeout(30):
            while not job.runs:  # noqa: ASYNC110 -- polls what the job task appends
                await asyncio.sleep(0.01)
        clock.set_speed(1.0)  # the next run is an hour of real time away again
        await asyncio.sleep(1.0)
    finally:
        await sched.stop()
    assert len(job.runs) == 1
    assert job.runs[0] >= start + timedelta(hours=1)  # never early on the clock
    assert sched.next_run("hourly") == start + timedelta(hours=2)
