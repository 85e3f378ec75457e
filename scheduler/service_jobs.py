"""The jobs of a :class:`~scheduler.service.Service` and the cycle's deciders.

All jobs run on the service's :class:`~scheduler.jobs.ClockedScheduler`, on the injected
clock, aligned to the site's quarter-hours in ``site.site.timezone``; each is wrapped by
:func:`~scheduler.jobs.guarded` (an exception is logged and counted in
``waldstadt_job_errors_total``, the service goes on). Missed runs coalesce and are logged.

=======================  ==========================================================
job id                   when, and what
=======================  ==========================================================
``poll``                 every ``dispatch.poll_interval_s``: one read → decide → write
                         cycle (:meth:`Service.run_cycle`); readings to the store; the
                         deciders, in this fixed order: one
                         :class:`~scheduler.dispatch_job.DispatchJob` per community (in
                         site-file order) giving its plan's setpoints of the quarter-hour,
                         then the operators' overrides (:mod:`scheduler.overrides`),
                         which hold their device against the plan until they expire
``dispatch:<community>`` 5 s after each quarter-hour (and once at start): the rolling
                         dispatch on the newest snapshot, solved in a worker thread;
                         the plan lands in ``service.plans[community]``
``metering``             30 s after each quarter-hour: meter counters → quarter-hour
                         intervals (:class:`~scheduler.metering_job.MeteringJob`), then
                         the provisional settlement of every community's day so far
``settlement:final``     daily at ``settlement.final_at`` local: the final settlement
                         of the previous local day of every community
``retention``            daily 03:30 local: raw readings older than the retention go
``mirror``               every 10 s when ``WALDSTADT_INFLUX_URL`` is set: drain the
                         InfluxDB outbox (in order; kept while the server is away)
``lighting:*``           tick, daily schedule push, communication check (when the
                         site has lighting; :mod:`scheduler.lighting.service`)
=======================  ==========================================================
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kernel.readings import Reading
from scheduler.cycle import CycleReport
from scheduler.dispatch_job import DispatchJob
from scheduler.jobs import (
    JobFunc,
    Trigger,
    daily_trigger,
    every,
    guarded,
    once,
    quarter_hour_trigger,
)
from scheduler.metering_job import MeteringJob
from scheduler.overrides import Overrides, overridable
from scheduler.settlement_job import SettlementJob
from store import MirrorConfig, MirrorUnavailable
from store.readings import WriteResult

if TYPE_CHECKING:
    from scheduler.service import Service

log = logging.getLogger(__name__)

#: Local time of the daily retention purge.
RETENTION_AT = (3, 30)
#: Seconds after each quarter-hour of the rolling dispatch and of metering + settlement.
DISPATCH_OFFSET_S = 5
SETTLEMENT_OFFSET_S = 30
#: How often the InfluxDB outbox is drained, in s of clock time.
MIRROR_EVERY_S = 10.0


def quarter_hour_start(now: datetime) -> datetime:
    """The start of the quarter-hour containing ``now`` (UTC; every real zone's offset is a
    multiple of 15 min, so this is the local quarter-hour too)."""
    utc = now.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


def install_jobs(service: Service) -> None:
    """Add the service's jobs to its scheduler and its deciders to ``service.deciders``."""
    sched = service.scheduler
    site = service.site
    tz = site.site.timezone
    now = service.clock.now()

    def add(job_id: str, func: JobFunc, trigger: Trigger) -> None:
        sched.add_clocked_job(guarded(job_id, func, sched, service.job_failed), trigger, job_id)

    add("poll", service.run_cycle, every(site.dispatch.poll_interval_s, quarter_hour_start(now)))

    overrides = Overrides(service.store)
    service.parts["overrides"] = overrides
    dispatch: dict[str, DispatchJob] = {}
    for community in site.communities:
        job = DispatchJob(site, community.id, service.store, service.clock, service.metrics)
        dispatch[community.id] = job
        service.deciders.append(overridable(job, overrides))
        run = _dispatch_run(service, job)
        add(f"dispatch:{community.id}", run, quarter_hour_trigger(tz, DISPATCH_OFFSET_S))
        add(f"dispatch:{community.id}:start", run, once(now))
    service.parts["dispatch"] = dispatch
    service.deciders.append(overrides)  # last: operators' manual setpoints

    metering = MeteringJob(service.store, site)
    settlement = SettlementJob(service.store, site, cache=metering.cache)
    service.parts["metering"] = metering
    service.parts["settlement"] = settlement

    async def quarter_hour_settlement() -> None:
        at = service.clock.now()
        await metering.close_quarter_hours(at)
        day = settlement.last_closed_day(at)
        for community in site.communities:
            await settlement.provisional(community.id, day, at)

    add("metering", quarter_hour_settlement, quarter_hour_trigger(tz, SETTLEMENT_OFFSET_S))

    async def final_settlement() -> None:
        at = service.clock.now()
        # close what metering has not closed yet: a final run must not estimate quarter-hours
        # whose readings are stored (nothing restates a final run by itself)
        await metering.close_quarter_hours(at)
        day = at.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)
        for community in site.communities:
            run = await settlement.final(community.id, day, at)
            log.info(
                "final settlement of %s for %s: version %d (%s), missing members %s",
                community.id,
                day,
                run.version,
                run.reason,
                run.details.get("missing_members", []),
            )

    final_at = site.settlement.final_at
    add("settlement:final", final_settlement, daily_trigger(tz, final_at.hour, final_at.minute))

    async def retention() -> None:
        removed = await service.store.purge_expired_readings(service.clock.now())
        log.info("retention: %d raw readings removed", removed)

    add("retention", retention, daily_trigger(tz, *RETENTION_AT))

    if service.settings.influx_url:
        add("mirror", _mirror_job(service), every(MIRROR_EVERY_S, now))


def _dispatch_run(service: Service, job: DispatchJob) -> JobFunc:
    async def run() -> None:
        report = service.last_report
        if report is None:
            log.warning("dispatch %s: no snapshot yet; waits for the next quarter-hour",
                        job.community_id)  # fmt: skip
            return
        service.plans[job.community_id] = await job.run(report.snapshot)

    return run


def _mirror_job(service: Service) -> JobFunc:
    s = service.settings
    mirror = service.store.mirror(
        MirrorConfig(
            url=s.influx_url or "",
            bucket=s.influx_bucket,
            org=s.influx_org,
            token=s.influx_token.get_secret_value() if s.influx_token else "",
        )
    )
    service.parts["mirror"] = mirror
    state = {"down": False}

    async def drain() -> None:
        try:
            await mirror.drain(max_batches=50)
        except MirrorUnavailable as exc:
            if not state["down"]:
                log.warning("InfluxDB mirror down, the outbox keeps the lines: %s", exc)
                state["down"] = True
        else:
            if state["down"]:
                log.info("InfluxDB mirror %s back; outbox draining", mirror.config.url)
                state["down"] = False
        stats = await service.store.outbox.stats()
        service.metrics.outbox_depth.set(stats.pending)

    return drain


async def store_readings(service: Service, report: CycleReport) -> None:
    """Queue the cycle's readings for the store; the commit happens in the writer's batch
    (the cycle does not wait for it; stopping the service drains the writer)."""
    readings: list[Reading] = [
        r for chans in report.snapshot.readings.values() for r in chans.values()
    ]
    if not readings:
        return
    future = await service.reading_writer.submit(readings)

    def committed(f: asyncio.Future[WriteResult]) -> None:
        if f.cancelled():
            return
        exc = f.exception()
        if exc is not None:
            log.warning("readings of the cycle at %s not stored: %s", report.snapshot.at, exc)
            return
        service.metrics.readings_ingested.inc(f.result().inserted)

    future.add_done_callback(committed)


__all__ = ["install_jobs", "quarter_hour_start", "store_readings"]
