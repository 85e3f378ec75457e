"""Test rig for the street lighting: a small street, the node fleet, and the lighting run by
the one cycle (:func:`scheduler.controller.site_controller` with the lighting as its only
decider, the one writer, the timer), each on its own bus against the shared broker, on a
fast simulated clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kernel.clock import Clock
from lighting.classes import Classing
from lighting.config import LightingSite
from lighting.examples import LATITUDE_DEG, LONGITUDE_DEG, PROGRAMS
from lighting.presence import PresenceRule
from lighting.site import Luminaire, Segment, Sensor, build_index
from lighting.traffic import TrafficRule
from protocols.mqtt import Backoff, Bus, BusConfig
from protocols.streetlight import LightCommand
from scheduler.controller import site_controller
from scheduler.jobs import ClockedScheduler
from scheduler.lighting import AlarmChange, LightingRuntime, LightingServiceConfig
from scheduler.observability import Metrics
from scheduler.writer import CommandWriter
from sims.streetlight import LuminaireSpec, NodeLogic, StreetlightFleet


def bus_config(broker: Any, client_id: str) -> BusConfig:
    return BusConfig(
        client_id=client_id,
        host=broker.host,
        port=broker.port,
        backoff=Backoff(initial_s=0.05, cap_s=0.5),
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait (generously: the machine is shared) until ``check()`` holds."""
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


def street_segment(
    segment_id: str = "s1",
    *,
    traffic: TrafficRule | None = None,
    presence: PresenceRule | None = None,
) -> Segment:
    """Design class M4 at 50 % (lower M5, M6; floor 20 %), Dortmund, the example calendar."""
    return Segment(
        segment_id,
        LATITUDE_DEG,
        LONGITUDE_DEG,
        Classing(segment_id, "M4", ("M5", "M6"), design_level_pct=50.0, driver_min_pct=10.0),
        traffic=traffic,
        presence=presence,
    )


def street_site(
    poles: int,
    *,
    segment: Segment | None = None,
    sensors: Iterable[Sensor] = (),
    rated_power_w: float = 40.0,
) -> LightingSite:
    """One segment of ``poles`` luminaires ``l0``… on street ``st`` (pole index = number)."""
    seg = segment or street_segment()
    lums = [Luminaire(f"l{i}", seg.segment_id, "st", i, rated_power_w, 0.5) for i in range(poles)]
    index = build_index([seg], lums, sensors)
    return LightingSite(index=index, programs=PROGRAMS, co2_g_per_kwh=380.0)


@contextlib.asynccontextmanager
async def running_fleet(
    broker: Any,
    client_id: str,
    clock: Clock,
    nodes: Iterable[NodeLogic],
    prefix: str,
) -> AsyncIterator[StreetlightFleet]:
    """The fleet on its own bus, subscribed before the service speaks, reporting every 60 s."""
    async with Bus(bus_config(broker, client_id)) as bus:
        await bus.wait_connected()
        fleet = StreetlightFleet(bus, clock, nodes, prefix=prefix, report_interval_s=60.0)
        await fleet.start()
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(fleet.run(), name="fleet")
            try:
                yield fleet
            finally:
                runner.cancel()


def nodes_for(
    site: LightingSite, clock: Clock, specs: dict[str, LuminaireSpec] | None = None
) -> list[NodeLogic]:
    now = clock.now()
    specs = specs or {}
    return [
        NodeLogic(lid, now, specs.get(lid, LuminaireSpec(40.0, 0.5)))
        for lid in site.index.luminaires
    ]


@dataclass
class Recorder:
    """Alarm changes from the hook, and commands seen on the broker."""

    changes: list[AlarmChange] = field(default_factory=list)
    commands: list[tuple[str, LightCommand]] = field(default_factory=list)

    async def on_alarm(self, change: AlarmChange) -> None:
        self.changes.append(change)


@contextlib.asynccontextmanager
async def running_service(
    broker: Any,
    client_id: str,
    clock: Clock,
    site: LightingSite,
    config: LightingServiceConfig,
    recorder: Recorder | None = None,
    *,
    tick_s: float = 10.0,
) -> AsyncIterator[LightingRuntime]:
    """The lighting in a cycle every ``tick_s`` of clock time, as the service runs it."""
    async with Bus(bus_config(broker, client_id)) as bus:
        await bus.wait_connected()
        hook = recorder.on_alarm if recorder is not None else None
        lighting = LightingRuntime(clock, bus, site, config, on_alarm=hook)

        async def pace() -> None:
            await bus.flush(timeout_s=5.0)

        writer = CommandWriter(lighting.targets, clock, pace=pace)
        controller = site_controller(
            clock,
            writer,
            Metrics(),
            deciders=(),
            poll_interval_s=tick_s,
            read_timeout_s=1.0,
            lighting=lighting,
        )
        scheduler = ClockedScheduler(clock)
        await lighting.start(scheduler, lambda _job, _exc: None)
        controller.install(scheduler, lambda _job, _exc: None)
        await controller.run_cycle()
        scheduler.start()
        try:
            yield lighting
        finally:
            await scheduler.stop()
            lighting.stop()
        await bus.flush()
