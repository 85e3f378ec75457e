"""End-to-end fixtures: a small simulated town and the running service on real components.

The town (:func:`small_town`): five households (four with PV, two of them with a battery, one
with a wallbox), a municipal PV plant behind its own grid meter, and one street of five
streetlights with a LoRaWAN traffic counter. Every Modbus device answers on loopback
(``sims.town.SimTown``), the lights and the counter speak MQTT to a Mosquitto of the test's own
(``restartable_broker``: the service subscribes to fixed topics such as
``waldstadt/devices/+/telemetry`` and ``waldstadt/lights/#``, which other test runs on the
shared broker also use), the store is SQLite or PostgreSQL (``db_url``), and the service is
``scheduler.service.Service`` on a :class:`~kernel.clock.SimClock` running many times faster
than real time.

The site document is the demo's (``sims.demo_site.demo_site_data``) with the test's dispatch
and settlement settings: a short horizon so that a solve fits into a quarter-hour of
accelerated clock time, and a feeder export limit so that the plan curtails PV at noon.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.service import Service
from kernel.clock import SimClock
from scheduler.settings import Settings
from scheduler.site import Site, site_from_data
from sims.demo_site import COMMUNITY_ID, demo_site_data
from sims.town import (
    EvSpec,
    HouseholdSpec,
    PlantSpec,
    SimTown,
    StreetSpec,
    TownConfig,
)

#: The street of the town; its segment is the demo's residential street ("Wohnstraße").
STREET = "waldweg"
PLANT = "stadtwerk-pv"
COMMUNITY = COMMUNITY_ID
#: Members whose grid meter the settlement reconciles (households and the plant).
HOUSEHOLDS = ("h01", "h02", "h03", "h04", "h05")


def small_town() -> TownConfig:
    """Five households, a 60 kWp plant with its grid meter, one street of five lights."""
    return TownConfig(
        name="Waldstadt E2E",
        households=[
            HouseholdSpec(prefix="h01", gateway="gw-a", annual_kwh=3500, kwp=8.0,
                          battery_wh=10_000),
            HouseholdSpec(prefix="h02", gateway="gw-a", annual_kwh=4200, kwp=6.0),
            HouseholdSpec(prefix="h03", gateway="gw-a", annual_kwh=2800, kwp=None),
            HouseholdSpec(prefix="h04", gateway="gw-b", annual_kwh=5200, kwp=10.0,
                          battery_wh=8_000, meter="sunspec"),
            HouseholdSpec(prefix="h05", gateway="gw-b", annual_kwh=4600, kwp=7.0,
                          ev=EvSpec(max_w=11_000, energy_need_wh=12_000,
                                    smart_charging=True)),
        ],
        plants=[PlantSpec(name=PLANT, gateway="gw-plant", kwp=60.0, meter="sunspec")],
        streets=[StreetSpec(name=STREET, luminaires=5, rated_power_w=40.0,
                            sensor_dev_eui="70b3d57ed0001234")],
    )  # fmt: skip


def site_for(
    town: TownConfig,
    sim: SimTown,
    *,
    poll_s: float = 120.0,
    revert_s: int = 900,
    horizon_qh: int = 8,
    solve_time_limit_s: float = 10.0,
    final_at: str = "01:00",
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Site:
    """The demo's site document for ``town`` with the test's dispatch and settlement."""
    data = demo_site_data(town, sim.modbus.endpoints)
    data["dispatch"] = {
        "horizon_qh": horizon_qh,
        "solve_time_limit_s": solve_time_limit_s,
        "revert_s": revert_s,
        "poll_interval_s": poll_s,
        "read_timeout_s": 1.0,
    }
    data["settlement"] = {"final_at": final_at}
    # the feeder takes at most 20 kW of export: at noon the plan must curtail PV
    data["communities"][0]["feeder_export_limit_w"] = 20_000.0
    for dev in data["devices"]:
        dev["timeout_s"] = 0.5
    if edit is not None:
        edit(data)
    return site_from_data(data, "e2e site")


def settings_for(db_url: str, host: str, port: int, **extra: Any) -> Settings:
    return Settings(
        mode="demo",
        database_url=db_url,
        broker_url=f"mqtt://{host}:{port}",
        broker_client_id=f"e2e-{uuid.uuid4().hex[:10]}",
        **extra,
    )


async def until(clock: SimClock, instant: datetime) -> None:
    """Sleep (real time) until the clock shows ``instant``."""
    left = (instant - clock.now()).total_seconds()
    if left > 0:
        await clock.sleep(left)


async def eventually(
    check: Callable[[], Any], *, timeout_s: float = 15.0, step_s: float = 0.05
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; real ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {check}")
        await asyncio.sleep(step_s)


@dataclass
class Running:
    """A started town and service (``service`` may be replaced by a restart)."""

    clock: SimClock
    town: TownConfig
    sim: SimTown
    site: Site
    settings: Settings
    service: Service


@contextlib.asynccontextmanager
async def running_town(
    clock: SimClock,
    db_url: str,
    broker: Any,
    *,
    town: TownConfig | None = None,
    settings_extra: dict[str, Any] | None = None,
    **site_kw: Any,
) -> AsyncIterator[Running]:
    """The town's simulators and the service on ``broker`` (``host``/``port``) and ``db_url``."""
    town = town or small_town()
    async with SimTown(town, clock, broker.host, broker.port) as sim:
        site = site_for(town, sim, **site_kw)
        settings = settings_for(db_url, broker.host, broker.port, **(settings_extra or {}))
        async with Service(settings, site, clock) as service:
            await service.bus.wait_connected(10)
            yield Running(clock, town, sim, site, settings, service)


__all__ = [
    "COMMUNITY",
    "HOUSEHOLDS",
    "PLANT",
    "STREET",
    "Running",
    "eventually",
    "running_town",
    "settings_for",
    "site_for",
    "small_town",
    "until",
]
