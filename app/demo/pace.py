"""The demo's clock slows down by itself when the controller cannot keep up, and says so.

A simulated clock at 144× gives every cycle 60 s / 144 ≈ 0.42 real seconds, but device I/O
takes real time whatever the clock. On a busy machine the cycles then overrun, jobs are
coalesced, plans go stale and the lamps fall behind — silently. :class:`Pace` watches the
cycles instead: every ``check_s`` real seconds it compares the slowest recent cycles with
their real interval (``poll_interval_s / speed``) and counts the poll runs the scheduler had
to skip. Above ``high`` (70 %) of the interval, or with a skipped run, the clock slows to
what the cycles allow (never below ``min_speed``); below ``low`` (30 %) for two checks in a
row it speeds up by a quarter, up to the speed asked for. :attr:`slowed` says why the clock
runs slower, for the readout and the operator page.
"""

from __future__ import annotations

import asyncio
import logging
import math

from kernel.clock import SimClock
from scheduler.controller import JOB_POLL, Controller
from scheduler.jobs import ClockedScheduler

log = logging.getLogger(__name__)


class Pace:
    def __init__(
        self,
        clock: SimClock,
        controller: Controller,
        scheduler: ClockedScheduler,
        target_speed: float,
        *,
        min_speed: float = 1.0,
        check_s: float = 5.0,
        high: float = 0.7,
        low: float = 0.3,
    ) -> None:
        self.clock = clock
        self.controller = controller
        self.scheduler = scheduler
        self.target_speed = target_speed
        self.min_speed = min(min_speed, target_speed)
        self.check_s = check_s
        self.high = high
        self.low = low
        self.slowed: str | None = None
        self._seen_cycles = len(controller.cycle_real_s)
        self._seen_missed = scheduler.missed_runs.get(JOB_POLL, 0)
        self._calm = 0

    def load(self) -> tuple[float, int]:
        """The slowest recent cycles as a share of their real interval (p90 of the window),
        and the poll runs skipped since the last check."""
        durations = list(self.controller.cycle_real_s)[self._seen_cycles :]
        self._seen_cycles = len(self.controller.cycle_real_s)
        missed = self.scheduler.missed_runs.get(JOB_POLL, 0)
        skipped, self._seen_missed = missed - self._seen_missed, missed
        if not durations:
            return (math.inf if skipped else 0.0), skipped
        durations.sort()
        p90 = durations[min(len(durations) - 1, int(0.9 * len(durations)))]
        interval_s = self.controller.poll_interval_s / self.clock.speed
        return p90 / interval_s, skipped

    def check(self) -> None:
        """Adjust the clock once from the cycles since the last check."""
        load, skipped = self.load()
        speed = self.clock.speed
        if load > self.high or skipped:
            self._calm = 0
            factor = 0.5 if math.isinf(load) else max(0.25, min(0.8, self.high / load * 0.8))
            new = max(self.min_speed, speed * factor)
            if new < speed:
                self._set(new, load, skipped)
        elif load < self.low and speed < self.target_speed:
            self._calm += 1
            if self._calm >= 2:
                self._calm = 0
                self._set(min(self.target_speed, speed * 1.25), load, skipped)
        else:
            self._calm = 0

    def _set(self, speed: float, load: float, skipped: int) -> None:
        old = self.clock.speed
        self.clock.set_speed(speed)
        if speed >= self.target_speed:
            self.slowed = None
            log.warning("demo clock back at %g× real time", speed)
            return
        why = (
            f"{skipped} cycle(s) skipped"
            if skipped and math.isinf(load)
            else f"cycles took {load * 100:.0f} % of their time"
        )
        self.slowed = f"the machine is busy ({why})"
        log.warning("demo clock %g× → %g× real time: %s", old, speed, self.slowed)

    async def run(self) -> None:
        """Check every ``check_s`` real seconds until cancelled."""
        while True:
            await asyncio.sleep(self.check_s)
            self.check()


__all__ = ["Pace"]
