"""The running service: one site's store, bus, devices, lighting and cycle, wired together.

``waldstadt run --site site.yaml`` and ``waldstadt demo`` both start a :class:`Service`::

    async with Service(settings, site, clock) as service:
        await serve_web(create_app(settings, runtime=service, store=service.store), host, port)

Starting opens, in this order: the store (``settings.database_url``, migrated), the reading
writer, the bus with the telemetry ingest routed before it connects, the site's devices
(:class:`~scheduler.devices.SiteDevices`), the command journal, the street lighting
(:class:`~scheduler.lighting.runtime.LightingRuntime`, when the site has lighting), the one
command writer over devices and luminaires, then re-applies the commands in force before a
restart once under their ids (:func:`scheduler.recovery.reapply_live`), builds the one cycle
(:class:`~scheduler.cycle.Cycle` with the dispatch, override and lighting deciders) and its
:class:`~scheduler.controller.Controller`, installs the jobs (:mod:`scheduler.service_jobs`),
runs one cycle and starts the scheduler. Stopping cancels the jobs (running ones may finish
first), drains the telemetry ingest and the reading writer (nothing acknowledged is lost)
and closes everything in reverse order.

A :class:`Service` is what the web app reads through ``api.runtime.Runtime``: ``clock``,
``metrics``, ``readiness()``, ``site``, ``lighting``, ``live()``. Tests also use ``store``,
``bus``, ``devices``, ``command_writer``, ``journal``, ``controller`` (``run_cycle()``,
``wait_for_cycle()``, ``last_report``, ``cycles``, ``cycle_real_s``), ``jobs``
(:class:`~scheduler.service_jobs.SiteJobs`: ``dispatch``, ``plans``, ``metering``,
``settlement``, ``overrides``, ``mirror``), ``scheduler`` and ``reapplied``.

``broker=(host, port)`` overrides ``settings.broker_url`` (the demo's embedded broker);
``store=`` lends an already opened store (not closed by the service). Give each test its own
``broker_client_id`` (the bus keeps a persistent session under it).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from datetime import timedelta
from types import TracebackType
from typing import Protocol, Self, TypeVar

from kernel.clock import Clock
from kernel.errors import ConfigError, WaldstadtError
from protocols.mqtt.bus import Bus
from scheduler.broker_connection import bus_config
from scheduler.controller import Controller, site_controller
from scheduler.cycle import CycleReport
from scheduler.devices import SiteDevices
from scheduler.health import Check, Readiness, broker_check, database_check, journal_check
from scheduler.ingest import TelemetryIngest
from scheduler.jobs import ClockedScheduler
from scheduler.journal_background import BackgroundJournal, service_journal
from scheduler.lighting.alarms import stored_alarms
from scheduler.lighting.config import LightingServiceConfig
from scheduler.lighting.runtime import LightingRuntime
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.plausibility import ReadingGate
from scheduler.recovery import reapply_live
from scheduler.service_jobs import SiteJobs, reading_recorder
from scheduler.settings import Settings
from scheduler.site import Site
from scheduler.writer import CommandWriter, Targets
from store import MirrorConfig, ReadingWriter, Store, StoreSettings
from store.lighting_config import effective_lighting_site

log = logging.getLogger(__name__)

#: How long a database probe of the readiness check may take, in real s.
DB_PROBE_TIMEOUT_S = 3.0
#: How long the writer waits for the bus to take a slice of commands, in real s.
PACE_TIMEOUT_S = 5.0


class Service:
    """One site's runtime. Satisfies ``api.runtime.Runtime``."""

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
        self._site = site
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._broker = hp
        self._lent_store = store
        self._stack: contextlib.AsyncExitStack | None = None
        self._store: Store | None = store
        self._bus: Bus | None = None
        self._devices: SiteDevices | None = None
        self._writer: CommandWriter | None = None
        self._readings: ReadingWriter | None = None
        self._controller: Controller | None = None
        self._jobs: SiteJobs | None = None
        #: the command journal (queued off the cycle's path; ``await journal.flush()``)
        self.journal: BackgroundJournal | None = None
        self.scheduler = ClockedScheduler(clock)
        self._lighting: LightingRuntime | None = None
        self.ingest: TelemetryIngest | None = None
        #: the plausibility checks of every reading before it is stored
        self.gate: ReadingGate | None = None
        #: what the restart recovery re-applied at start
        self.reapplied: list[object] = []
        #: who paces a simulated clock (the demo's), for the live view
        self.pace: PaceView | None = None

    # -- what the web app reads (api.runtime.Runtime) ------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    @property
    def site(self) -> Site:
        return self._site

    @property
    def lighting(self) -> LightingRuntime | None:
        return self._lighting

    def live(self) -> LiveView:
        """The newest cycle's snapshot, the devices away and the commands in force."""
        report = self._controller.last_report if self._controller is not None else None
        pace = self.pace
        return LiveView(
            snapshot=None if report is None else report.snapshot,
            away=dict(self._devices.away) if self._devices is not None else {},
            in_force=self._writer.in_force() if self._writer is not None else (),
            speed=self._clock.speed,
            target_speed=None if pace is None else pace.target_speed,
            slowed=None if pace is None else pace.slowed,
        )

    async def readiness(self) -> Readiness:
        """Broker connected, database reachable (a real query), last cycle recent, the
        command journal recording (else its buffer grows: why, and how deep)."""
        cycle = (
            self._controller.check()
            if self._controller is not None
            else Check("cycle", False, "not started")
        )
        db = await database_check(self._store, DB_PROBE_TIMEOUT_S)
        return Readiness((broker_check(self._bus), db, cycle, journal_check(self.journal)))

    # -- the parts ------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return _started(self._store, "store")

    @property
    def bus(self) -> Bus:
        return _started(self._bus, "bus")

    @property
    def devices(self) -> SiteDevices:
        return _started(self._devices, "devices")

    @property
    def command_writer(self) -> CommandWriter:
        return _started(self._writer, "command_writer")

    @property
    def reading_writer(self) -> ReadingWriter:
        return _started(self._readings, "reading_writer")

    @property
    def controller(self) -> Controller:
        return _started(self._controller, "controller")

    @property
    def jobs(self) -> SiteJobs:
        return _started(self._jobs, "jobs")

    @property
    def last_report(self) -> CycleReport | None:
        return None if self._controller is None else self._controller.last_report

    @property
    def cycles(self) -> int:
        return 0 if self._controller is None else self._controller.cycles

    @property
    def cycle_real_s(self) -> collections.deque[float]:
        return self.controller.cycle_real_s

    async def run_cycle(self) -> CycleReport:
        """One read → decide → write pass now (the ``poll`` job's work)."""
        return await self.controller.run_cycle()

    async def wait_for_cycle(self, timeout_s: float = 30.0) -> CycleReport:
        """Wait (real ``timeout_s``) for the next cycle to complete and return its report."""
        return await self.controller.wait_for_cycle(timeout_s)

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
        store = await self._open_store(stack)
        self.gate = ReadingGate(store, self._clock, self._metrics, self._site)
        self._readings = await stack.enter_async_context(
            ReadingWriter(store.readings, now=self._clock.now)
        )
        await self._open_bus(stack)
        self._devices = await stack.enter_async_context(
            SiteDevices(self._site.devices, self._clock)
        )
        self.journal = await stack.enter_async_context(
            service_journal(store, self._clock.now, self._metrics.registry)
        )
        await self.journal.replay()  # what a killed process buffered, before reapply_live
        lighting = await self._make_lighting()
        targets = Targets(self._devices.writable, lighting.targets if lighting else None)
        self._writer = CommandWriter(
            targets,
            self._clock,
            timeout_s=self._site.dispatch.read_timeout_s,
            journal=self.journal,
            pace=self._pace,
        )
        stack.push_async_callback(self._writer.settle)  # before the journal stops
        reapplied = await reapply_live(store, self._writer, self._clock.now())
        self.reapplied = list(reapplied)
        self._jobs = self._make_jobs(store)
        controller = self._make_controller(lighting)
        self._controller = controller
        controller.count_commands(reapplied)
        if lighting is not None:
            await lighting.start(self.scheduler, self.job_failed)
            stack.callback(lighting.stop)
        self._jobs.install(self.scheduler, controller, self.job_failed)
        controller.install(self.scheduler, self.job_failed)
        await controller.run_cycle()
        self.scheduler.start()
        stack.push_async_callback(self.scheduler.stop)  # the first thing stopping does
        log.info(
            "service started: %d devices (%d away), %d communities, lighting %s",
            len(self._site.devices),
            len(self._devices.away),
            len(self._site.communities),
            "on" if lighting is not None else "off",
        )

    async def _open_store(self, stack: contextlib.AsyncExitStack) -> Store:
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
        return store

    async def _open_bus(self, stack: contextlib.AsyncExitStack) -> None:
        bus = Bus(bus_config(self.settings, self._broker))  # TLS for mqtts://
        # Telemetry is routed before the connection: a persistent session hands over the QoS 1
        # messages queued while the service was down right after CONNACK, and a route added
        # later would miss them (the bus acknowledges what no route takes).
        self._metrics.count_rejections(bus.malformed)
        self.ingest = TelemetryIngest(bus, self.reading_writer, gate=self.gate)
        await self.ingest.start()
        self._bus = await stack.enter_async_context(bus)
        stack.push_async_callback(self._drain_ingest)

    async def _make_lighting(self) -> LightingRuntime | None:
        # the newest configuration the lighting engineers stored, unless the site file's
        # lighting section changed since (store.lighting_config: the site file then wins)
        lighting_site = await effective_lighting_site(
            self.store.lighting_config, self._site.lighting
        )
        if lighting_site is None:
            return None
        config = LightingServiceConfig(timezone=self._site.site.timezone)
        self._lighting = LightingRuntime(
            self._clock, self.bus, lighting_site, config, on_alarm=stored_alarms(self.store)
        )
        return self._lighting

    def _make_jobs(self, store: Store) -> SiteJobs:
        s = self.settings
        mirror = None
        if s.influx_url:
            mirror = store.mirror(
                MirrorConfig(
                    url=s.influx_url,
                    bucket=s.influx_bucket,
                    org=s.influx_org,
                    token=s.influx_token.get_secret_value() if s.influx_token else "",
                )
            )
        return SiteJobs.create(self._site, store, self._clock, self._metrics, mirror)

    def _make_controller(self, lighting: LightingRuntime | None) -> Controller:
        site = self._site
        controller = site_controller(
            self._clock,
            self.command_writer,
            self._metrics,
            deciders=self.jobs.deciders(),
            poll_interval_s=site.dispatch.poll_interval_s,
            read_timeout_s=site.dispatch.read_timeout_s,
            gateways=self.devices.gateways,
            lighting=lighting,
            device_names=[d.name for d in site.devices],
        )
        recorder = reading_recorder(self.reading_writer, self._metrics, lighting, self.gate)
        controller.after.insert(0, recorder)
        return controller

    async def _pace(self) -> None:
        """Between slices of commands: wait (bounded) until the bus has sent the last one."""
        with contextlib.suppress(WaldstadtError, TimeoutError):
            await self.bus.flush(timeout_s=PACE_TIMEOUT_S)

    async def _drain_ingest(self) -> None:
        if self.ingest is not None:
            try:
                await self.ingest.drain(timeout_s=10.0)
            except TimeoutError:
                log.warning("telemetry not all committed at stop; the broker redelivers it")

    def job_failed(self, job_id: str, exc: BaseException) -> None:
        self._metrics.job_errors.labels(job=job_id).inc()

    # -- readiness ------------------------------------------------------------------------------


T = TypeVar("T")


class PaceView(Protocol):
    """What the live view says of a clock that slows itself (``app.demo.pace.Pace``)."""

    @property
    def target_speed(self) -> float: ...

    @property
    def slowed(self) -> str | None: ...


def _started(part: T | None, name: str) -> T:
    if part is None:
        raise RuntimeError(f"Service.{name} used before the service started")
    return part


__all__ = ["PaceView", "Service"]
