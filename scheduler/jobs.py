"""APScheduler 3.11 (``AsyncIOScheduler``) driven by the injected :class:`~protocols.clock.Clock`.

APScheduler reads the wall clock itself. The demo and the tests run a simulated clock many
times faster than real time, so :class:`ClockedScheduler` asks the clock for "now" when it
looks for due jobs and divides its waits by the clock's speed. Jobs are aligned to the site's
quarter-hours with cron triggers in the site's time zone (computed in UTC underneath).

Missed runs (the process was busy or asleep) are coalesced into one run and logged with the
number of runs that were skipped. Each job runs at most once at a time; a coroutine job runs
on the event loop, blocking work (a solve) belongs in ``asyncio.to_thread`` inside the job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from protocols.clock import Clock

log = logging.getLogger(__name__)

JobFunc = Callable[[], Awaitable[None]]


def quarter_hour_trigger(tz: str, offset_s: int = 0) -> CronTrigger:
    """Fire at every quarter-hour of the site's zone, ``offset_s`` seconds after it (< 900)."""
    if not 0 <= offset_s < 900:
        raise ValueError("offset_s must be within the quarter-hour (0..899)")
    minutes = ",".join(str(m + offset_s // 60) for m in (0, 15, 30, 45))
    return CronTrigger(minute=minutes, second=offset_s % 60, timezone=tz)


def daily_trigger(tz: str, hour: int, minute: int = 0) -> CronTrigger:
    """Fire once a day at local wall time ``hour:minute`` in the site's zone."""
    return CronTrigger(hour=hour, minute=minute, second=0, timezone=tz)


def every(seconds: float, start: datetime) -> IntervalTrigger:
    """Fire every ``seconds`` of clock time, aligned to ``start``."""
    return IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC)


class ClockedScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """An ``AsyncIOScheduler`` whose notion of time is the injected clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._clock = clock
        self.missed_runs: dict[str, int] = {}

    def add_clocked_job(self, func: JobFunc, trigger: BaseTrigger, job_id: str) -> Job:
        """Add a job whose first run is computed from the clock's now, not the wall clock."""
        first = trigger.get_next_fire_time(None, self._clock.now())
        return self.add_job(
            func, trigger, id=job_id, name=job_id, next_run_time=first, replace_existing=True
        )

    def _start_timer(self, wait_seconds: float | None) -> None:
        scaled = None if wait_seconds is None else wait_seconds / self._clock.speed
        super()._start_timer(scaled)

    def _process_jobs(self) -> float | None:
        # The same procedure as BaseScheduler._process_jobs, with the clock's time and with
        # missed runs counted; the job store is the in-memory default (no retries needed).
        if self.state == STATE_PAUSED:
            return None
        now = self._clock.now()
        next_wakeup: datetime | None = None
        with self._jobstores_lock:
            for alias, store in self._jobstores.items():
                for job in store.get_due_jobs(now):
                    run_times: list[datetime] = job._get_run_times(now)
                    if not run_times:
                        continue
                    if len(run_times) > 1:
                        skipped = len(run_times) - 1
                        self.missed_runs[job.id] = self.missed_runs.get(job.id, 0) + skipped
                        log.warning(
                            "job %s missed %d run(s) up to %s; coalesced into one run",
                            job.id,
                            skipped,
                            run_times[-2].isoformat(),
                        )
                    executor = self._lookup_executor(job.executor)
                    try:
                        executor.submit_job(job, run_times[-1:])
                    except Exception:
                        log.exception("job %s could not be started", job.id)
                    following = job.trigger.get_next_fire_time(run_times[-1], now)
                    if following:
                        job._modify(next_run_time=following)
                        store.update_job(job)
                    else:
                        self.remove_job(job.id, alias)
                store_next = store.get_next_run_time()
                if store_next and (next_wakeup is None or store_next < next_wakeup):
                    next_wakeup = store_next
        if next_wakeup is None:
            return None
        wait = (next_wakeup - self._clock.now()).total_seconds()
        return max(wait, 0.0)

    def next_run(self, job_id: str) -> datetime | None:
        job = self.get_job(job_id)
        return None if job is None else job.next_run_time


def describe(scheduler: ClockedScheduler) -> list[dict[str, Any]]:
    """The jobs and their next runs (UTC), for /health and the operator page."""
    return [
        {
            "id": job.id,
            "next_run": job.next_run_time.astimezone(UTC).isoformat()
            if job.next_run_time
            else None,
            "missed": scheduler.missed_runs.get(job.id, 0),
        }
        for job in scheduler.get_jobs()
    ]


__all__ = [
    "ClockedScheduler",
    "daily_trigger",
    "describe",
    "every",
    "quarter_hour_trigger",
]
