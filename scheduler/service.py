"""The running service: one site's devices, bus, store, jobs and web app in one event loop.

``waldstadt run --site site.yaml`` and ``waldstadt demo`` both start a :class:`Service`::

    async with Service(settings, site, clock) as service:
        await serve_web(create_app(settings, runtime=service, store=service.store), host, port)

Starting opens the store (``settings.database_url``, migrated), connects the bus, opens the
devices through the production drivers (:mod:`scheduler.devices`), re-applies the commands in
force before a restart once under their ids (:func:`scheduler.recovery.reapply_live`), runs
one cycle, and starts the jobs on a :class:`~scheduler.jobs.ClockedScheduler` aligned to the
site's quarter-hours in ``site.site.timezone`` (see :mod:`scheduler.service_jobs` for the
list). Stopping cancels the jobs (running ones may finish first), drains the telemetry ingest
and the reading writer (nothing acknowledged is lost) and closes everything in reverse order.

Setpoints are refreshed by ONE mechanism: the :class:`~scheduler.cycle.CommandWriter` of the
polling cycle re-writes every setpoint in force once half of its revert time has passed. The
poll interval must therefore be below half the revert time (checked at start).
``protocols.sunspec.curtailment.CurtailmentKeeper`` is not used here.

Starting a service in a test (small site, simulated clock)::

    clock = SimClock(datetime(2026, 6, 1, 10, 0, tzinfo=UTC), speed=60)
    async with ModbusFleet(clock) as fleet:                 # or SimTown
        site = site_from_data({...devices at fleet.endpoint(...)...})
        settings = Settings(mode="demo", database_url=f"sqlite+aiosqlite:///{tmp}/w.db",
                            broker_url="mqtt://127.0.0.1:1883", broker_client_id=unique)
        async with Service(settings, site, clock) as service:
            report = await service.wait_for_cycle()         # the next completed cycle
            service.plans, service.last_report, await service.readiness()

``broker=(host, port)`` overrides ``settings.broker_url`` (the demo's embedded broker);
``store=`` lends an already opened store (not closed by the service). Give each test its own
``broker_client_id`` (the bus keeps a persistent session under it). For the whole demo town,
``app.demo.demo_service(town_path, speed, broker_url, database_url)`` starts the town in a
process of its own plus the service on it and yields ``Demo(service, town, clock)``.

What a running service offers: ``clock``, ``metrics``, ``await readiness()`` (the
``api.runtime.Runtime`` protocol); ``store``, ``bus``, ``site``, ``devices``
(:class:`~scheduler.devices.SiteDevices`: ``readable``, ``writable``, ``away``),
``command_writer`` (``write([...])``, ``in_force()``), ``journal`` (``await
journal.flush()`` before reading the command table), ``reading_writer``, ``lighting``
(:class:`~scheduler.lighting.service.LightingService` or None), ``ingest``, ``scheduler``
(``lateness``, ``missed_runs``, ``get_job(id)``), ``plans`` (community id → newest
``vpp.dispatch.Plan``), ``parts`` (``"dispatch"``: community id → DispatchJob,
``"metering"``, ``"settlement"``, ``"mirror"``), ``last_report`` / ``last_cycle_at`` /
``cycles`` / ``cycle_real_s``, ``reapplied`` (what the restart recovery re-applied),
``await run_cycle()`` (one cycle now) and ``await wait_for_cycle(timeout_s)``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text

from kernel.clock import Clock
from kernel.commands import CommandResult
from kernel.errors import ConfigError
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig, HealthState
from scheduler.cycle import CommandWriter, Cycle, CycleReport, Decider
from scheduler.devices import SiteDevices
from scheduler.health import Check, Readiness
from scheduler.ingest import TelemetryIngest
from scheduler.jobs import ClockedScheduler
from scheduler.lighting.alarms import AlarmChange, Change
from scheduler.lighting.config import LightingServiceConfig
from scheduler.lighting.service import LightingService
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.overrides import Overrides
from scheduler.recovery import BackgroundJournal, StoreJournal, reapply_live
from scheduler.service_jobs import install_jobs, store_readings
from scheduler.settings import Settings
from scheduler.site import Site
from store import ReadingWriter, Store, StoreSettings
from store.lighting_config import effective_lighting_site
from vpp.dispatch import Plan

log = logging.getLogger(__name__)

#: Lighting ticks every minute of clock time (the programs step in minutes).
LIGHTING_TICK_S = 60.0
#: How long a database probe of the readiness check may take, in real s.
DB_PROBE_TIMEOUT_S = 3.0


class Service:
    """One site's runtime. Satisfies ``api.runtime.Runtime`` (clock, metrics, readiness)."""

    def __init__(
        self,
        settings: Settings,
        site: Site,
        clock: Clock,
        *,
        broker: tuple[str, int] | None = None,
        store: Store | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        dispatch = site.dispatch
        if dispatch.poll_interval_s >= dispatch.revert_s / 2:
            raise ConfigError(
                "dispatch.poll_interval_s",
                f"{dispatch.poll_interval_s:g} s must be below half of dispatch.revert_s "
                f"({dispatch.revert_s} s), or setpoints lapse before the cycle refreshes them",
            )
        hp = broker or settings.broker_host_port
        if hp is None:
            raise ConfigError("WALDSTADT_BROKER_URL", "the service needs a broker", "environment")
        self.settings = settings
        self.site = site
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._broker = hp
        self._lent_store = store
        self._stack: contextlib.AsyncExitStack | None = None
        self._store: Store | None = store
        self._bus: Bus | None = None
        self._devices: SiteDevices | None = None
        self._cycle: Cycle | None = None
        self._writer: CommandWriter | None = None
        self._readings: ReadingWriter | None = None
        #: the command journal (queued off the cycle's path; ``await journal.flush()``)
        self.journal: BackgroundJournal | None = None
        self.scheduler = ClockedScheduler(clock)
        self.lighting: LightingService | None = None
        self.ingest: TelemetryIngest | None = None
        #: community id → the newest plan of its rolling dispatch
        self.plans: dict[str, Plan] = {}
        #: deciders of the cycle in their fixed order (filled by the jobs module)
        self.deciders: list[Decider] = []
        #: what the restart recovery re-applied at start
        self.reapplied: list[CommandResult] = []
        self.last_report: CycleReport | None = None
        self.last_cycle_at: datetime | None = None
        self.cycles = 0
        #: real seconds of the recent cycles (bounded; the benchmark's figures)
        self.cycle_real_s: collections.deque[float] = collections.deque(maxlen=10_000)
        self._cycle_done = asyncio.Condition()
        self._cycle_lock = asyncio.Lock()
        #: free-form per-job state of the jobs module (dispatch jobs, settlement, mirror)
        self.parts: dict[str, Any] = {}

    # -- what others read -----------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Service.store used before the service started")
        return self._store

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise RuntimeError("Service.bus used before the service started")
        return self._bus

    @property
    def devices(self) -> SiteDevices:
        if self._devices is None:
            raise RuntimeError("Service.devices used before the service started")
        return self._devices

    @property
    def command_writer(self) -> CommandWriter:
        if self._writer is None:
            raise RuntimeError("Service.command_writer used before the service started")
        return self._writer

    @property
    def reading_writer(self) -> ReadingWriter:
        if self._readings is None:
            raise RuntimeError("Service.reading_writer used before the service started")
        return self._readings

    def live(self) -> LiveView:
        """The newest cycle's snapshot, the devices away and the commands in force."""
        report = self.last_report
        return LiveView(
            snapshot=None if report is None else report.snapshot,
            away=dict(self._devices.away) if self._devices is not None else {},
            in_force=self._writer.in_force() if self._writer is not None else (),
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("Service is not re-entrant")
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._start(stack)
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        log.info("service stopped")

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        s = self.settings
        if self._lent_store is None:
            store_settings = StoreSettings(
                raw_retention=timedelta(days=s.reading_retention_days),
                mirror_readings=s.influx_url is not None,
            )
            self._store = await stack.enter_async_context(
                Store(s.database_url, settings=store_settings)
            )
        store = self.store
        # the members' day and month views read per-day totals in the site's zone; built once
        # from the stored intervals (a database from before they existed), then kept by writes
        await store.day_totals.ensure_zone(s.timezone, now=self._clock.now())
        self._readings = await stack.enter_async_context(
            ReadingWriter(store.readings, now=self._clock.now)
        )
        password = s.broker_password.get_secret_value() if s.broker_password else None
        bus = Bus(
            BusConfig(
                client_id=s.broker_client_id,
                host=self._broker[0],
                port=self._broker[1],
                username=s.broker_username,
                password=password,
                manual_ack=True,
            )
        )
        # Telemetry is routed before the connection: a persistent session hands over the QoS 1
        # messages queued while the service was down right after CONNACK, and a route added
        # later would miss them (the bus acknowledges what no route takes).
        self.ingest = TelemetryIngest(bus, self._readings)
        await self.ingest.start()
        self._bus = await stack.enter_async_context(bus)
        stack.push_async_callback(self._drain_ingest)
        self._devices = await stack.enter_async_context(SiteDevices(self.site.devices, self._clock))
        journal = await stack.enter_async_context(
            BackgroundJournal(StoreJournal(store, self._clock.now))
        )
        self.journal = journal
        self._writer = CommandWriter(
            self._devices.writable,
            self._clock,
            timeout_s=self.site.dispatch.read_timeout_s,
            journal=journal,
        )
        self.reapplied = await reapply_live(store, self._writer, self._clock.now())
        self._count_commands(self.reapplied)
        await self._start_lighting(stack)
        install_jobs(self)  # the jobs and the deciders, in their fixed order
        devices = self._devices
        self._cycle = Cycle(
            lambda: devices.readable,
            self.deciders,
            self._writer,
            self._clock,
            read_timeout_s=self.site.dispatch.read_timeout_s,
        )
        await self.run_cycle()
        self.scheduler.start()
        stack.push_async_callback(self._stop_jobs)  # the first thing stopping does
        log.info(
            "service started: %d devices (%d away), %d communities, lighting %s",
            len(self.site.devices),
            len(self._devices.away),
            len(self.site.communities),
            "on" if self.lighting is not None else "off",
        )

    async def _start_lighting(self, stack: contextlib.AsyncExitStack) -> None:
        # the newest configuration the lighting engineers stored, unless the site file's
        # lighting section changed since (store.lighting_config: the site file then wins)
        lighting_site = await effective_lighting_site(
            self.store.lighting_config, self.site.lighting
        )
        if lighting_site is None:
            return
        config = LightingServiceConfig(tick_s=LIGHTING_TICK_S, timezone=self.site.site.timezone)
        self.lighting = await stack.enter_async_context(
            LightingService(
                self._clock,
                self.bus,
                lighting_site,
                config,
                on_alarm=self._lighting_alarm,
                scheduler=self.scheduler,
                on_job_error=self.job_failed,
            )
        )

    async def _stop_jobs(self) -> None:
        await self.scheduler.stop()

    async def _drain_ingest(self) -> None:
        if self.ingest is not None:
            try:
                await self.ingest.drain(timeout_s=10.0)
            except TimeoutError:
                log.warning("telemetry not all committed at stop; the broker redelivers it")

    # -- the cycle ----------------------------------------------------------------------------

    async def run_cycle(self) -> CycleReport:
        """One read → decide → write pass; readings go to the store. The polling job."""
        if self._cycle is None:
            raise RuntimeError("Service.run_cycle before the service started")
        async with self._cycle_lock:
            overrides = self.parts.get("overrides")
            if isinstance(overrides, Overrides):
                await overrides.refresh(self._clock.now())
            report = await self._cycle.run_once()
        m = self._metrics
        real_s = report.duration_s / self._clock.speed
        m.cycle_seconds.observe(real_s)
        self.cycle_real_s.append(real_s)
        for dev in self.site.devices:
            m.device_available.labels(device=dev.name).set(
                1 if report.snapshot.available(dev.name) else 0
            )
        for name in report.decider_errors:
            m.decider_errors.labels(decider=name).inc()
        self._count_commands(report.results)
        await store_readings(self, report)
        async with self._cycle_done:
            self.last_report = report
            self.last_cycle_at = report.snapshot.at
            self.cycles += 1
            self._cycle_done.notify_all()
        return report

    async def wait_for_cycle(self, timeout_s: float = 30.0) -> CycleReport:
        """Wait (real ``timeout_s``) for the next cycle to complete and return its report."""
        async with asyncio.timeout(timeout_s), self._cycle_done:
            seen = self.cycles
            await self._cycle_done.wait_for(lambda: self.cycles > seen)
            assert self.last_report is not None
            return self.last_report

    def _count_commands(self, results: list[CommandResult] | tuple[CommandResult, ...]) -> None:
        for res in results:
            self._metrics.commands.labels(status=res.status.value).inc()

    def job_failed(self, job_id: str, exc: BaseException) -> None:
        self._metrics.job_errors.labels(job=job_id).inc()

    # -- readiness ------------------------------------------------------------------------------

    async def readiness(self) -> Readiness:
        """Broker connected, database reachable (a real query), last cycle recent."""
        return Readiness((self._broker_check(), await self._database_check(), self._cycle_check()))

    def _broker_check(self) -> Check:
        if self._bus is None:
            return Check("broker", False, "not started")
        health = self._bus.health
        if health.state is HealthState.CONNECTED:
            return Check("broker", True, f"connected to {self._bus.config.broker}")
        reason = health.reason or "not connected yet"
        return Check("broker", False, f"{health.state.value} ({self._bus.config.broker}): {reason}")

    async def _database_check(self) -> Check:
        if self._store is None:
            return Check("database", False, "not opened")
        try:
            async with asyncio.timeout(DB_PROBE_TIMEOUT_S):
                async with self._store.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            return Check("database", False, f"no answer within {DB_PROBE_TIMEOUT_S:g} s")
        except Exception as exc:  # noqa: BLE001 - any failure of the probe is the reason
            return Check("database", False, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return Check("database", True, "reachable")

    def _cycle_check(self) -> Check:
        poll_s = self.site.dispatch.poll_interval_s
        if self.last_cycle_at is None:
            return Check("cycle", False, "no cycle completed yet")
        age_s = (self._clock.now() - self.last_cycle_at).total_seconds()
        if age_s > 3 * poll_s:
            return Check(
                "cycle", False, f"last cycle {age_s:.0f} s ago (more than 3 × {poll_s:g} s)"
            )
        return Check("cycle", True, f"last cycle {age_s:.0f} s ago")

    # -- lighting alarms go to the store -------------------------------------------------------

    async def _lighting_alarm(self, change: AlarmChange) -> None:
        a = change.alarm
        key = f"lighting:{a.luminaire_id}:{a.kind.value}:{a.detail}"
        if change.change is Change.RAISED:
            await self.store.alarms.raise_alarm(
                key,
                source=a.luminaire_id,
                kind=a.kind.value,
                severity="warning",
                message=a.detail or a.kind.value,
                now=change.at,
            )
        else:
            await self.store.alarms.clear_alarm(key, message="cleared", now=change.at)


__all__ = ["Service"]
