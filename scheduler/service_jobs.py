"""The site's slow rhythms: jobs that feed the cycle, and the cycle's deciders.

All jobs run on the service's :class:`~scheduler.jobs.ClockedScheduler`, on the injected
clock, aligned to the site's quarter-hours in ``site.site.timezone``; each is wrapped by
:func:`~scheduler.jobs.guarded` (an exception is logged and counted in
``waldstadt_job_errors_total``, the service goes on). Missed runs coalesce and are logged.

=======================  ==========================================================
job id                   when, and what
=======================  ==========================================================
``poll``                 every ``dispatch.poll_interval_s``: the one read → decide →
                         write cycle (:class:`~scheduler.controller.Controller`)
``dispatch:<community>`` 5 s after each quarter-hour (and once at start): the rolling
                         dispatch on the newest snapshot, solved in a worker thread;
                         the plan's setpoints are then a decider of the cycle
``metering``             30 s after each quarter-hour: meter counters → quarter-hour
                         intervals, then the provisional settlement of every
                         community's day so far
``settlement:final``     daily at ``settlement.final_at`` local: the final settlement
                         of the previous local day of every community
``retention``            daily 03:30 local: raw readings older than the retention go
``mirror``               every 10 s when an InfluxDB mirror is configured: drain the
                         outbox (in order; kept while the server is away)
``lighting:schedule-push`` daily (the lighting's ``push_at``): retained schedules
=======================  ==========================================================

The deciders of the cycle, in this fixed order: one dispatch per community (in site-file
order) giving its plan's setpoints of the quarter-hour, then the operators' overrides, which
hold their device against the plan until they expire, then the street lighting (in a worker
thread).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from kernel.clock import Clock
from kernel.readings import Reading
from scheduler.controller import Controller
from scheduler.cycle import CycleReport, Decider
from scheduler.dispatch import DispatchJob
from scheduler.jobs import (
    ClockedScheduler,
    JobFunc,
    Trigger,
    daily_trigger,
    every,
    guarded,
    once,
    quarter_hour_trigger,
)
from scheduler.lighting.runtime import LightingRuntime
from scheduler.metering_job import MeteringJob
from scheduler.observability import Metrics
from scheduler.overrides import Overrides, overridable
from scheduler.plausibility import SOURCE_CYCLE, ReadingGate
from scheduler.settlement_job import SettlementJob
from scheduler.site import Site
from store import MirrorUnavailable, ReadingWriter, Store
from store.errors import StoreUnavailable
from store.mirror import InfluxMirror
from store.readings import WriteResult
from vpp.dispatch import Plan

log = logging.getLogger(__name__)

#: Local time of the daily retention purge.
RETENTION_AT = (3, 30)
#: Seconds after each quarter-hour of the rolling dispatch and of metering + settlement.
DISPATCH_OFFSET_S = 5
SETTLEMENT_OFFSET_S = 30
#: How often the InfluxDB outbox is drained, in s of clock time.
MIRROR_EVERY_S = 10.0


@dataclass
class SiteJobs:
    """The jobs' parts: each community's rolling dispatch and its newest plan, the operators'
    overrides, metering, settlement and the optional mirror."""

    site: Site
    store: Store
    clock: Clock
    metrics: Metrics
    overrides: Overrides
    dispatch: dict[str, DispatchJob]
    metering: MeteringJob
    settlement: SettlementJob
    mirror: InfluxMirror | None = None
    plans: dict[str, Plan] = field(default_factory=dict)
    _mirror_down: bool = False

    @classmethod
    def create(
        cls,
        site: Site,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        mirror: InfluxMirror | None = None,
    ) -> SiteJobs:
        metering = MeteringJob(store, site)
        return cls(
            site=site,
            store=store,
            clock=clock,
            metrics=metrics,
            overrides=Overrides(store),
            dispatch={
                c.id: DispatchJob(site, c.id, store, clock, metrics) for c in site.communities
            },
            metering=metering,
            settlement=SettlementJob(store, site, cache=metering.cache),
            mirror=mirror,
        )

    def deciders(self) -> list[Decider]:
        """The VPP's deciders in their fixed order: the plans, then the overrides."""
        out: list[Decider] = [overridable(job, self.overrides) for job in self.dispatch.values()]
        out.append(self.overrides)
        return out

    def install(
        self,
        scheduler: ClockedScheduler,
        controller: Controller,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        """Add the jobs to ``scheduler``; overrides are read before every cycle."""
        tz = self.site.site.timezone
        now = self.clock.now()

        def add(job_id: str, func: JobFunc, trigger: Trigger) -> None:
            scheduler.add_clocked_job(guarded(job_id, func, scheduler, on_error), trigger, job_id)

        controller.before.append(self.overrides.refresh)
        for cid, job in self.dispatch.items():
            run = self._dispatch_run(controller, job)
            add(f"dispatch:{cid}", run, quarter_hour_trigger(tz, DISPATCH_OFFSET_S))
            add(f"dispatch:{cid}:start", run, once(now))
        add("metering", self.quarter_hour_settlement, quarter_hour_trigger(tz, SETTLEMENT_OFFSET_S))
        final_at = self.site.settlement.final_at
        final = daily_trigger(tz, final_at.hour, final_at.minute)
        add("settlement:final", self.final_settlement, final)
        add("retention", self.retention, daily_trigger(tz, *RETENTION_AT))
        if self.mirror is not None:
            add("mirror", self.drain_mirror, every(MIRROR_EVERY_S, now))

    def _dispatch_run(self, controller: Controller, job: DispatchJob) -> JobFunc:
        async def run() -> None:
            report = controller.last_report
            if report is None:
                log.warning("dispatch %s: no snapshot yet; waits for the next quarter-hour",
                            job.community_id)  # fmt: skip
                return
            self.plans[job.community_id] = await job.run(report.snapshot)

        return run

    async def quarter_hour_settlement(self) -> None:
        at = self.clock.now()
        await self.metering.close_quarter_hours(at)
        day = self.settlement.last_closed_day(at)
        for community in self.site.communities:
            await self.settlement.provisional(community.id, day, at)

    async def final_settlement(self) -> None:
        at = self.clock.now()
        # close what metering has not closed yet: a final run must not estimate quarter-hours
        # whose readings are stored (nothing restates a final run by itself)
        await self.metering.close_quarter_hours(at)
        day = at.astimezone(ZoneInfo(self.site.site.timezone)).date() - timedelta(days=1)
        for community in self.site.communities:
            run = await self.settlement.final(community.id, day, at)
            log.info(
                "final settlement of %s for %s: version %d (%s), missing members %s",
                community.id,
                day,
                run.version,
                run.reason,
                run.details.get("missing_members", []),
            )

    async def retention(self) -> None:
        removed = await self.store.purge_expired_readings(self.clock.now())
        log.info("retention: %d raw readings removed", removed)

    async def drain_mirror(self) -> None:
        mirror = self.mirror
        if mirror is None:
            return
        try:
            await mirror.drain(max_batches=50)
        except MirrorUnavailable as exc:
            if not self._mirror_down:
                log.warning("InfluxDB mirror down, the outbox keeps the lines: %s", exc)
                self._mirror_down = True
        else:
            if self._mirror_down:
                log.info("InfluxDB mirror %s back; outbox draining", mirror.config.url)
                self._mirror_down = False
        stats = await self.store.outbox.stats()
        self.metrics.outbox_depth.set(stats.pending)


def reading_recorder(
    readings: ReadingWriter,
    metrics: Metrics,
    lighting: LightingRuntime | None,
    gate: ReadingGate | None = None,
) -> Callable[[CycleReport], Awaitable[None]]:
    """An after-cycle step: the cycle's readings (and the lighting's new node reports and
    traffic samples) queued for the store. The commit happens in the writer's batch; the
    cycle does not wait for it (stopping the service drains the writer). With ``gate``, the
    devices' readings pass the plausibility checks first (a meter whose counter fell or
    jumped is quarantined, not stored); the lighting's come from its validated inbox."""

    async def record(report: CycleReport) -> None:
        batch: list[Reading] = report.snapshot.all_readings()
        if gate is not None:
            try:
                batch = await gate.admit(batch, SOURCE_CYCLE)
            except StoreUnavailable as exc:
                log.warning("readings of the cycle at %s not stored: %s", report.snapshot.at, exc)
                batch = []
        if lighting is not None:
            batch += lighting.new_readings(report.snapshot.lighting)
        if not batch:
            return
        future = await readings.submit(batch)

        def committed(f: asyncio.Future[WriteResult]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                log.warning("readings of the cycle at %s not stored: %s", report.snapshot.at, exc)
                return
            metrics.readings_ingested.inc(f.result().inserted)

        future.add_done_callback(committed)

    return record


__all__ = ["SiteJobs", "reading_recorder"]
