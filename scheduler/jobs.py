"""Jobs on the injected :class:`~kernel.clock.Clock`: a small timer of our own.

The demo runs a simulated clock many times faster than real time and changes its speed while
it runs, so every "when" here is the clock's: the timer waits in clock seconds
(``clock.sleep``), never longer than :data:`MAX_REAL_WAIT_S` real seconds, and then asks the
clock for now -- a speed change makes it neither oversleep nor fire early. With a
:class:`~kernel.clock.ManualClock` it moves only when the test advances the clock.

Triggers (:class:`Trigger`) give the instants in UTC: :func:`quarter_hour_trigger` and
:func:`daily_trigger` follow the site's local time across DST (92/96/100 quarter-hours a
day; a daily time in the spring-forward gap fires at the first valid instant after it, an
ambiguous one once, at its first occurrence), :func:`every` is a fixed period of clock
time, :func:`once` one instant.

Missed runs (the process was busy or asleep) are coalesced into one run, counted in
``missed_runs`` and logged once with their number; a run due while the job's previous run
still runs is skipped, counted and logged. Each run is a task ``job:{id}`` owned by the
scheduler; ``lateness`` keeps how late runs started (clock s). Blocking work (a solve)
belongs in ``asyncio.to_thread`` inside the job.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kernel.clock import Clock
from kernel.errors import ConfigError

log = logging.getLogger(__name__)

JobFunc = Callable[[], Awaitable[object]]
#: The timer looks at the clock at least this often, in real seconds (speed changes).
MAX_REAL_WAIT_S = 0.5
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Trigger(abc.ABC):
    """When a job runs: a rule that yields instants (aware, UTC)."""

    @abc.abstractmethod
    def first(self, now: datetime) -> datetime | None:
        """The first run of a job added at ``now`` (``None``: never)."""

    @abc.abstractmethod
    def after(self, fired: datetime) -> datetime | None:
        """The run following the one due at ``fired`` (``None``: no more)."""

    def last_due(self, due: datetime, now: datetime) -> tuple[datetime, int]:
        """The latest run at or before ``now`` starting from the run ``due`` (<= ``now``), and
        how many runs that makes from ``due`` on (more than one: runs were missed)."""
        count = 1
        while (following := self.after(due)) is not None and following <= now:
            due, count = following, count + 1
        return due, count


class _Local(Trigger):
    """A rule in the site's wall time; ``first`` is the first instant at or after now."""

    def __init__(self, tz: str) -> None:
        try:
            self.tz = ZoneInfo(tz)
        except (ValueError, KeyError) as exc:
            raise ConfigError("timezone", f"unknown time zone {tz!r}") from exc

    @abc.abstractmethod
    def at_or_after(self, earliest: datetime) -> datetime: ...

    def first(self, now: datetime) -> datetime:
        return self.at_or_after(now)

    def after(self, fired: datetime) -> datetime:
        return self.at_or_after(fired + _US)


class _QuarterHours(_Local):
    def __init__(self, tz: str, offset_s: int) -> None:
        super().__init__(tz)
        self.offset_s = offset_s

    def at_or_after(self, earliest: datetime) -> datetime:
        start = earliest.astimezone(UTC)
        shift_s = _utcoffset_s(start, self.tz)
        candidate = self._slot(start, shift_s)
        later_s = _utcoffset_s(candidate, self.tz)
        if later_s != shift_s:  # the zone changes its offset before that slot: its grid then
            candidate = self._slot(start, later_s)
        return candidate

    def _slot(self, start: datetime, shift_s: int) -> datetime:
        """The first slot at or after ``start`` on the wall clock's quarter-hour grid (at UTC
        offset ``shift_s``) plus the offset; in whole microseconds, so no float rounds."""
        shift_us = (shift_s - self.offset_s) * 1_000_000
        wall_us = (start - _EPOCH) // _US + shift_us
        slot_us = -(-wall_us // 900_000_000) * 900_000_000
        return _EPOCH + timedelta(microseconds=slot_us - shift_us)


def _utcoffset_s(instant: datetime, tz: ZoneInfo) -> int:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return int(offset.total_seconds())


class _Daily(_Local):
    def __init__(self, tz: str, hour: int, minute: int) -> None:
        super().__init__(tz)
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ConfigError("daily_trigger", f"no wall time {hour:02d}:{minute:02d}")
        self.wall = time(hour, minute)

    def on(self, day: date) -> datetime:
        """The instant of the wall time on ``day``: the first occurrence when the wall time
        repeats (fall back), the end of the gap when it does not exist (spring forward)."""
        wall = datetime.combine(day, self.wall)
        first = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        if first.astimezone(self.tz).replace(tzinfo=None) == wall:
            return first
        # in the gap: fold=1 gives an instant before the change, fold=0 one after it
        lo = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        hi = first
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.tz).utcoffset() == hi.astimezone(self.tz).utcoffset():
                hi = mid
            else:
                lo = mid
        return hi.replace(microsecond=0)

    def at_or_after(self, earliest: datetime) -> datetime:
        day = earliest.astimezone(self.tz).date() - timedelta(days=1)
        while (instant := self.on(day)) < earliest:
            day += timedelta(days=1)
        return instant


class _Every(Trigger):
    def __init__(self, seconds: float, start: datetime) -> None:
        if seconds <= 0:
            raise ConfigError("every", f"period must be positive, got {seconds} s")
        if start.tzinfo is None:
            raise ConfigError("every", "start must be timezone-aware")
        self.period_us = max(1, round(seconds * 1e6))
        self.start = start.astimezone(UTC)

    def _slot(self, instant: datetime, *, ceil: bool) -> int:
        diff_us = (instant - self.start) // _US
        return -(-diff_us // self.period_us) if ceil else diff_us // self.period_us

    def _at(self, slot: int) -> datetime:
        return self.start + timedelta(microseconds=slot * self.period_us)

    def first(self, now: datetime) -> datetime:
        return self._at(max(0, self._slot(now, ceil=True)))

    def after(self, fired: datetime) -> datetime:
        return self._at(self._slot(fired, ceil=False) + 1)

    def last_due(self, due: datetime, now: datetime) -> tuple[datetime, int]:
        last = self._slot(now, ceil=False)  # a fixed period: no need to walk the runs
        return self._at(last), last - self._slot(due, ceil=False) + 1


class _Once(Trigger):
    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ConfigError("once", "the instant must be timezone-aware")
        self.at = at.astimezone(UTC)

    def first(self, now: datetime) -> datetime:
        return self.at  # in the past: it runs at once (late, as its lateness shows)

    def after(self, fired: datetime) -> None:
        return None


def quarter_hour_trigger(tz: str, offset_s: int = 0) -> Trigger:
    """Fire at every quarter-hour of the site's zone, ``offset_s`` seconds after it (< 900)."""
    if not 0 <= offset_s < 900:
        raise ConfigError("offset_s", "must be within the quarter-hour (0..899)")
    return _QuarterHours(tz, offset_s)


def daily_trigger(tz: str, hour: int, minute: int = 0) -> Trigger:
    """Fire once a day at local wall time ``hour:minute`` in the site's zone."""
    return _Daily(tz, hour, minute)


def every(seconds: float, start: datetime) -> Trigger:
    """Fire every ``seconds`` of clock time, aligned to ``start`` (the first run is the first
    aligned instant at or after the time the job is added)."""
    return _Every(seconds, start)


def once(at: datetime) -> Trigger:
    """Fire once at the instant ``at`` (at once if it has passed when the job is added)."""
    return _Once(at)


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job as the scheduler holds it now; ``next_run_time`` is ``None`` when it is done."""

    id: str
    next_run_time: datetime | None
    trigger: Trigger


@dataclass(slots=True)
class _Job:
    id: str
    func: JobFunc
    trigger: Trigger
    next_run_time: datetime | None  # None: done

    def view(self) -> ScheduledJob:
        return ScheduledJob(self.id, self.next_run_time, self.trigger)


class ClockedScheduler:
    """Runs jobs at their triggers' instants on ``clock``; see the module docstring."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        #: job id → runs coalesced or skipped since start
        self.missed_runs: dict[str, int] = collections.Counter()
        #: job id → how late its recent runs started, in s of clock time (bounded)
        self.lateness: dict[str, collections.deque[float]] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._timer: asyncio.Task[None] | None = None
        self._sleeper: asyncio.Task[None] | None = None
        self._stopped = self._paused = False

    # -- jobs -----------------------------------------------------------------------------

    def add_clocked_job(self, func: JobFunc, trigger: Trigger, job_id: str) -> ScheduledJob:
        """Add (or replace) a job; its first run is computed from the clock's now."""
        job = _Job(job_id, func, trigger, trigger.first(self._clock.now()))
        self._jobs[job_id] = job
        self._poke()
        return job.view()

    def get_job(self, job_id: str) -> ScheduledJob | None:
        job = self._jobs.get(job_id)
        return None if job is None else job.view()

    def get_jobs(self) -> list[ScheduledJob]:
        """The jobs, soonest first (done ones last)."""
        far = datetime.max.replace(tzinfo=UTC)
        jobs = sorted(self._jobs.values(), key=lambda j: j.next_run_time or far)
        return [j.view() for j in jobs]

    def remove_job(self, job_id: str) -> None:
        """Remove a job (a run in progress goes on); a job id that is not there is a
        :class:`KeyError`."""
        if self._jobs.pop(job_id, None) is None:
            raise KeyError(f"no job {job_id!r}")
        self._poke()

    def next_run(self, job_id: str) -> datetime | None:
        job = self._jobs.get(job_id)
        return None if job is None else job.next_run_time

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer on the running event loop."""
        if self._timer is not None or self._stopped:
            raise RuntimeError("the scheduler runs already (or was stopped)")
        self._timer = asyncio.get_running_loop().create_task(self._tick(), name="jobs-timer")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Start no more runs, give running ones ``timeout_s`` real seconds to finish, then
        cancel what is left."""
        if self._stopped:
            return
        self._stopped = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if running := [t for t in self._running.values() if not t.done()]:
            _done, pending = await asyncio.wait(running, timeout=timeout_s)
            for task in pending:
                log.warning("job task %s still running at stop; cancelled", task.get_name())
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=timeout_s)

    def pause(self) -> None:
        """Start no runs until :meth:`resume` (those due meanwhile are coalesced then)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._poke()

    async def _tick(self) -> None:
        clock = self._clock
        while True:
            now = clock.now()
            due = [j for j in self._jobs.values() if j.next_run_time and j.next_run_time <= now]
            for job in due if not self._paused else ():
                self._run_due(job, now)
            wait_s = MAX_REAL_WAIT_S * clock.speed  # paused: due runs wait for resume()
            times = [j.next_run_time for j in self._jobs.values() if j.next_run_time]
            if times and not self._paused:
                wait_s = min(wait_s, (min(times) - clock.now()).total_seconds())
            if wait_s > 0:
                self._sleeper = asyncio.get_running_loop().create_task(
                    clock.sleep(wait_s), name="jobs-timer-sleep"
                )
                try:
                    await asyncio.wait([self._sleeper])  # a poke cancels the sleeper
                finally:
                    self._sleeper.cancel()
                    self._sleeper = None

    def _poke(self) -> None:
        """Make the timer look at its jobs again (added, removed, resumed)."""
        if self._sleeper is not None:
            self._sleeper.cancel()

    def _run_due(self, job: _Job, now: datetime) -> None:
        assert job.next_run_time is not None
        due, runs = job.trigger.last_due(job.next_run_time, now)
        job.next_run_time = job.trigger.after(due)
        if runs > 1:
            self.missed_runs[job.id] += runs - 1
            log.warning("job %s missed %d run(s) up to %s; coalesced into one run",
                        job.id, runs - 1, due.isoformat())  # fmt: skip
        previous = self._running.get(job.id)
        if previous is not None and not previous.done():
            self.missed_runs[job.id] += 1
            log.warning("job %s still running at %s; that run is skipped", job.id,
                        due.isoformat())  # fmt: skip
        else:
            late_s = (now - due).total_seconds()
            self.lateness.setdefault(job.id, collections.deque(maxlen=10_000)).append(late_s)
            task = asyncio.get_running_loop().create_task(
                _call(job.id, job.func), name=f"job:{job.id}"
            )
            self._running[job.id] = task
        if job.next_run_time is None:
            del self._jobs[job.id]


async def _call(job_id: str, func: JobFunc) -> None:
    """One run; an exception is logged (a job that must never fail is :func:`guarded`)."""
    try:
        await func()
    except Exception:
        log.exception("job %s raised", job_id)


def guarded(
    job_id: str,
    func: JobFunc,
    scheduler: ClockedScheduler,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> JobFunc:
    """``func`` as a job that never takes the scheduler down: an exception is logged with the
    job id and handed to ``on_error`` (a metrics counter), and the next run happens as usual.
    ``scheduler`` (the one the job runs on) owns and names the run's task itself; it stays in
    the signature so that the callers say where the job runs."""

    async def run() -> None:
        try:
            await func()
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
            "next_run": job.next_run_time.isoformat() if job.next_run_time else None,
            "missed": scheduler.missed_runs.get(job.id, 0),
        }
        for job in scheduler.get_jobs()
    ]
