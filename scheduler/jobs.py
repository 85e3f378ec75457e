"""APScheduler 3.11 (``AsyncIOScheduler``) driven by the injected :class:`~kernel.clock.Clock`.

APScheduler reads the wall clock itself. The demo and the tests run a simulated clock many
times faster than real time, so :class:`ClockedScheduler` asks the clock for "now" when it
looks for due jobs and divides its waits by the clock's speed. Jobs are aligned to the site's
quarter-hours with cron triggers in the site's time zone (computed in UTC underneath).

Missed runs (the process was busy or asleep) are coalesced into one run and logged with the
number of runs that were skipped. Each job runs at most once at a time (a run that comes due
while the previous one still runs is skipped, logged and counted as missed); a coroutine job
runs on the event loop, blocking work (a solve) belongs in ``asyncio.to_thread`` inside the
job. How late each run started (clock seconds after its due time) is kept per job in
:attr:`ClockedScheduler.lateness` for the benchmark and the operator page.

:func:`guarded` wraps a job so that an exception is logged with the job's name and counted,
and the scheduler goes on; :meth:`ClockedScheduler.stop` lets running jobs finish (bounded)
before it shuts down.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from kernel.clock import Clock

log = logging.getLogger(__name__)

JobFunc = Callable[[], Awaitable[object]]
#: What decides when a job runs (``quarter_hour_trigger``, ``daily_trigger``, ``every``, ``once``).
Trigger = BaseTrigger


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


def once(at: datetime) -> DateTrigger:
    """Fire once at the instant ``at``."""
    return DateTrigger(run_date=at, timezone=UTC)


class ClockedScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """An ``AsyncIOScheduler`` whose notion of time is the injected clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._clock = clock
        self.missed_runs: dict[str, int] = {}
        #: job id → how late its recent runs started, in s of clock time (bounded)
        self.lateness: dict[str, collections.deque[float]] = {}
        self._running: set[asyncio.Task[Any]] = set()

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
                    except MaxInstancesReachedError:
                        self.missed_runs[job.id] = self.missed_runs.get(job.id, 0) + 1
                        log.warning(
                            "job %s still running at %s; that run is skipped",
                            job.id,
                            run_times[-1].isoformat(),
                        )
                    except Exception:
                        log.exception("job %s could not be started", job.id)
                    else:
                        late = (now - run_times[-1]).total_seconds()
                        self.lateness.setdefault(job.id, collections.deque(maxlen=10_000)).append(
                            late
                        )
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

    def track(self, task: asyncio.Task[Any]) -> None:
        """Note a running job's task (done by :func:`guarded`) so that :meth:`stop` can
        wait for it."""
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Start no more runs, give running ones ``timeout_s`` real seconds to finish, then
        cancel what is left and shut down."""
        if self.state == STATE_STOPPED:
            return
        self.pause()
        running = [t for t in self._running if not t.done()]
        if running:
            _done, pending = await asyncio.wait(running, timeout=timeout_s)
            for task in pending:
                log.warning("job task %s still running at stop; cancelled", task.get_name())
        self.shutdown(wait=False)
        # the executor cancelled what was left; let those tasks see their cancellation
        left = [t for t in self._running if not t.done()]
        if left:
            await asyncio.wait(left, timeout=timeout_s)


def guarded(
    job_id: str,
    func: JobFunc,
    scheduler: ClockedScheduler,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> JobFunc:
    """``func`` as a job that never takes the scheduler down: an exception is logged with the
    job id and handed to ``on_error`` (a metrics counter), and the next run happens as usual."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            scheduler.track(task)
        try:
            await func()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s failed; it runs again at its next time", job_id)
            if on_error is not None:
                on_error(job_id, exc)

    run.__name__ = run.__qualname__ = job_id.replace(":", "_").replace("-", "_")
    return run


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
    "JobFunc",
    "Trigger",
    "daily_trigger",
    "describe",
    "every",
    "guarded",
    "once",
    "quarter_hour_trigger",
]
