"""The controller: the one cycle on a timer, and what each cycle leaves behind.

:class:`Controller` runs :class:`~scheduler.cycle.Cycle` every ``poll_interval_s`` of clock
time (the job ``poll``), never two at once; before each cycle its ``before`` hooks run (the
operators' overrides are read from the store), after it the ``after`` hooks (readings to the
store, the lighting's alarms). It keeps the newest report for the live views, counts cycles,
records each cycle's real duration, and updates the metrics (cycle time, device
availability, decider errors, commands by result). :meth:`check` is the readiness check
"last cycle recent".
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from kernel.clock import Clock
from kernel.commands import CommandResult
from scheduler.cycle import Cycle, CycleReport, Decider, OffLoop
from scheduler.health import Check
from scheduler.jobs import ClockedScheduler, every, guarded
from scheduler.lighting.runtime import LightingRuntime
from scheduler.observability import Metrics
from scheduler.reading import Gateway
from scheduler.writer import CommandWriter

log = logging.getLogger(__name__)

BeforeHook = Callable[[datetime], Awaitable[None]]
AfterHook = Callable[[CycleReport], Awaitable[None]]
JOB_POLL = "poll"


class Controller:
    """Runs the site's one cycle and keeps its newest report."""

    def __init__(
        self,
        clock: Clock,
        cycle: Cycle,
        metrics: Metrics,
        *,
        poll_interval_s: float,
        device_names: Sequence[str] = (),
    ) -> None:
        self.clock = clock
        self.cycle = cycle
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self._device_names = list(device_names)
        self.before: list[BeforeHook] = []
        self.after: list[AfterHook] = []
        self.last_report: CycleReport | None = None
        self.last_cycle_at: datetime | None = None
        self.cycles = 0
        #: real seconds of the recent cycles (bounded; the benchmark's figures)
        self.cycle_real_s: collections.deque[float] = collections.deque(maxlen=10_000)
        self._done = asyncio.Condition()
        self._lock = asyncio.Lock()

    def install(
        self, scheduler: ClockedScheduler, on_error: Callable[[str, BaseException], None]
    ) -> None:
        """Run the cycle every ``poll_interval_s`` from the current quarter-hour's start."""
        now = self.clock.now()
        start = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        job = guarded(JOB_POLL, self.run_cycle, scheduler, on_error)
        scheduler.add_clocked_job(job, every(self.poll_interval_s, start), JOB_POLL)

    async def run_cycle(self) -> CycleReport:
        """One read → decide → write pass, then the ``after`` hooks."""
        async with self._lock:
            now = self.clock.now()
            for hook in self.before:
                await hook(now)
            report = await self.cycle.run_once()
            for after in self.after:
                try:
                    await after(report)
                except Exception:
                    log.exception("a step after the cycle failed; the next cycle runs as usual")
        self._account(report)
        async with self._done:
            self.last_report = report
            self.last_cycle_at = report.snapshot.at
            self.cycles += 1
            self._done.notify_all()
        return report

    async def wait_for_cycle(self, timeout_s: float = 30.0) -> CycleReport:
        """Wait (real ``timeout_s``) for the next cycle to complete and return its report."""
        async with asyncio.timeout(timeout_s), self._done:
            seen = self.cycles
            await self._done.wait_for(lambda: self.cycles > seen)
            assert self.last_report is not None
            return self.last_report

    def count_commands(self, results: Sequence[CommandResult]) -> None:
        for res in results:
            self.metrics.commands.labels(status=res.status.value).inc()

    def _account(self, report: CycleReport) -> None:
        m = self.metrics
        m.cycle_seconds.observe(report.duration_s)
        self.cycle_real_s.append(report.duration_s)
        for name in self._device_names:
            m.device_available.labels(device=name).set(1 if report.snapshot.available(name) else 0)
        for name in report.decider_errors:
            m.decider_errors.labels(decider=name).inc()
        self.count_commands(report.results)

    def check(self) -> Check:
        """Readiness: the last cycle is no older than three poll intervals."""
        if self.last_cycle_at is None:
            return Check("cycle", False, "no cycle completed yet")
        age_s = (self.clock.now() - self.last_cycle_at).total_seconds()
        poll_s = self.poll_interval_s
        if age_s > 3 * poll_s:
            return Check(
                "cycle", False, f"last cycle {age_s:.0f} s ago (more than 3 × {poll_s:g} s)"
            )
        return Check("cycle", True, f"last cycle {age_s:.0f} s ago")


def site_controller(
    clock: Clock,
    writer: CommandWriter,
    metrics: Metrics,
    *,
    deciders: Sequence[Decider],
    poll_interval_s: float,
    read_timeout_s: float,
    gateways: Callable[[], Sequence[Gateway]] = lambda: (),
    lighting: LightingRuntime | None = None,
    device_names: Sequence[str] = (),
) -> Controller:
    """The one cycle of a site: its devices by gateway, the VPP's ``deciders`` and then the
    street lighting's (off the event loop), one writer; after each cycle the lighting's
    alarms. Readings go to the store through a hook the caller adds
    (:func:`scheduler.service_jobs.reading_recorder`)."""
    all_deciders = list(deciders)
    if lighting is not None:
        all_deciders.append(OffLoop(lighting.decider))
    cycle = Cycle(
        clock,
        writer,
        all_deciders,
        gateways=gateways,
        lighting_inputs=lighting.take_inputs if lighting is not None else None,
        read_timeout_s=read_timeout_s,
    )
    controller = Controller(
        clock, cycle, metrics, poll_interval_s=poll_interval_s, device_names=device_names
    )
    if lighting is not None:

        async def lighting_after(report: CycleReport) -> None:
            await lighting.after_cycle(report.snapshot)

        controller.after.append(lighting_after)
        # the fast path does not wait for the journal's fsync (CommandWriter.write)
        lighting.bind(functools.partial(writer.write, wait_for_journal=False), controller.run_cycle)
    return controller


__all__ = ["JOB_POLL", "Controller", "site_controller"]
