"""A simulated town: Modbus households and PV plants, MQTT streetlights, LoRaWAN traffic sensors.

The town file and its models live in :mod:`sims.town_config` (importable from here too).
Start a town from a small YAML file or from Python; every device answers on a free loopback
port (Modbus) or on the given broker (MQTT), and everything follows one clock::

    config = load_town("sims/default_town.yaml")
    async with SimTown(config, clock, broker_host, broker_port) as town:
        town.modbus.endpoints        # name → host, port, unit id, kind
        town.light_ids               # streetlight node ids

On a broker with credentials (``logins``), each street's luminaires connect as one gateway
with that street's login, as a segment controller would, and each LoRaWAN network's sensors
as that network server; without, every connection is anonymous.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from kernel.clock import Clock
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig
from sims.modbus.fleet import ModbusFleet
from sims.profiles import ClearSkyPv
from sims.streetlight import LuminaireSpec, NodeLogic, StreetlightFleet
from sims.town_config import (
    DEFAULT_TOWN,
    EvSpec,
    HeaterSpec,
    HouseholdGroupSpec,
    HouseholdSpec,
    PlantSpec,
    Range,
    StreetSpec,
    TownConfig,
    light_ids,
    load_town,
)
from sims.traffic import SensorIdentity, TrafficSensor

__all__ = [
    "DEFAULT_TOWN",
    "BrokerLogin",
    "EvSpec",
    "HeaterSpec",
    "HouseholdGroupSpec",
    "HouseholdSpec",
    "PlantSpec",
    "Range",
    "SimTown",
    "StreetSpec",
    "TownConfig",
    "TownLights",
    "TownLogins",
    "light_ids",
    "load_town",
]


@dataclass(frozen=True, slots=True)
class BrokerLogin:
    """A broker username and its password (never shown in a repr)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TownLogins:
    """Who the town connects as: per street the gateway login of its luminaires, per LoRaWAN
    network (``chirpstack``, ``tts``) the network server's; ``default`` for anything not
    listed (``None``: anonymous)."""

    streets: Mapping[str, BrokerLogin] = field(default_factory=dict)
    networks: Mapping[str, BrokerLogin] = field(default_factory=dict)
    default: BrokerLogin | None = None

    def street(self, name: str) -> BrokerLogin | None:
        return self.streets.get(name, self.default)

    def network(self, name: str) -> BrokerLogin | None:
        return self.networks.get(name, self.default)


class TownLights:
    """The town's streetlights: one fleet per street, each on its street's connection."""

    def __init__(self, fleets: Mapping[str, StreetlightFleet]) -> None:
        self.fleets = dict(fleets)

    @property
    def nodes(self) -> dict[str, NodeLogic]:
        return {k: v for fleet in self.fleets.values() for k, v in fleet.nodes.items()}

    @property
    def outcomes(self) -> collections.Counter[str]:
        total: collections.Counter[str] = collections.Counter()
        for fleet in self.fleets.values():
            total.update(fleet.outcomes)
        return total


def _stable(text: str) -> int:
    """A small number from ``text`` that is the same in every process (``hash`` is not)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))


def _modbus_fleet(config: TownConfig, clock: Clock) -> ModbusFleet:
    """The town's Modbus devices (not yet serving): every member's meter, PV, battery,
    wallbox and storage heater, and every plant's inverter and grid meter."""
    fleet = ModbusFleet(clock)
    for h in config.members:
        fleet.add_household(
            h.prefix,
            gateway=h.gateway,
            annual_kwh=h.annual_kwh,
            kwp=h.kwp,
            battery_wh=h.battery_wh,
            meter=h.meter,
            lat=config.latitude,
            lon=config.longitude,
            cloud_seed=h.cloud_seed,
            profile=h.profile,
            tilt_deg=h.tilt_deg,
            azimuth_deg=h.azimuth_deg,
            ev=h.ev.params(seed=h.cloud_seed * 7919 + _stable(h.prefix)) if h.ev else None,
            heater=h.heater.params() if h.heater else None,
            tz=config.timezone,
        )
    for p in config.plants:
        pv = ClearSkyPv(
            lat=config.latitude,
            lon=config.longitude,
            kwp=p.kwp,
            tilt_deg=p.tilt_deg,
            azimuth_deg=p.azimuth_deg,
        )
        inverter = fleet.add_inverter(
            p.name, gateway=p.gateway, rated_w=p.kwp * 1000, pv=pv, cloud_seed=p.cloud_seed
        )
        if p.meter:
            fleet.add_plant_meter(
                f"{p.name}-meter",
                inverter,
                gateway=p.gateway,
                meter=p.meter,
                own_use_kwh=p.own_use_kwh,
                tz=config.timezone,
            )
    return fleet


class SimTown:
    """Starts and stops the simulated devices of a :class:`TownConfig`.

    The streetlights report their state every ``report_interval_s`` of clock time (5 min, like
    real nodes; a command's effect is reported at once) and advance every ``light_tick_s``
    (default: a tenth of a real second at the clock's speed, at least 1 s of clock time), so
    100 luminaires at 144× cost little CPU. Each street's luminaires share one connection
    (logged in as ``logins.street(name)``), each LoRaWAN network's sensors another
    (``logins.network(name)``)."""

    def __init__(
        self,
        config: TownConfig,
        clock: Clock,
        broker_host: str,
        broker_port: int,
        *,
        light_prefix: str = "waldstadt/lights",
        report_interval_s: float = 300.0,
        light_tick_s: float | None = None,
        logins: TownLogins | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.modbus = _modbus_fleet(config, clock)
        self._broker = (broker_host, broker_port)
        self._logins = logins or TownLogins()
        self._run = uuid.uuid4().hex[:8]
        self._buses: dict[str, Bus] = {}
        self.light_ids: list[str] = []
        self.lights: TownLights | None = None
        self.sensors: dict[str, TrafficSensor] = {}
        self._light_prefix = light_prefix
        self._report_interval_s = report_interval_s
        self._light_tick_s = light_tick_s or max(1.0, clock.speed / 10.0)
        self._tasks: list[asyncio.Task[None]] = []

    async def _bus(self, name: str, login: BrokerLogin | None) -> Bus:
        """The connection ``name`` (a street, a network server), opened on first use."""
        bus = self._buses.get(name)
        if bus is None:
            bus = Bus(
                BusConfig(
                    client_id=f"sim-{name}-{self._run}",
                    host=self._broker[0],
                    port=self._broker[1],
                    username=login.username if login else None,
                    password=login.password if login else None,
                )
            )
            await bus.__aenter__()
            self._buses[name] = bus
        return bus

    async def __aenter__(self) -> Self:
        await self.modbus.start()
        now = self.clock.now()
        fleets: dict[str, StreetlightFleet] = {}
        for index, street in enumerate(self.config.streets):
            spec = LuminaireSpec(rated_power_w=street.rated_power_w)
            bus = await self._bus(street.name, self._logins.street(street.name))
            nodes = [NodeLogic(node_id, now, spec) for node_id in light_ids(street)]
            self.light_ids += [n.node_id for n in nodes]
            fleets[street.name] = StreetlightFleet(
                bus,
                self.clock,
                nodes,
                prefix=self._light_prefix,
                report_interval_s=self._report_interval_s,
                tick_s=self._light_tick_s,
            )
            if street.sensor_dev_eui:
                ident = SensorIdentity(street.sensor_dev_eui, f"traffic-{street.name}")
                self.sensors[street.name] = TrafficSensor(
                    await self._bus(street.network, self._logins.network(street.network)),
                    self.clock,
                    ident,
                    network=street.network,
                    zone=self.config.timezone,
                    seed=index + 1,
                )
        if fleets:
            self.lights = TownLights(fleets)
        for name, fleet in fleets.items():
            await fleet.start()
            self._tasks.append(asyncio.create_task(fleet.run(), name=f"sim streetlights {name}"))
        for name, sensor in self.sensors.items():
            self._tasks.append(asyncio.create_task(sensor.run(), name=f"sim traffic {name}"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.lights is not None:
            for fleet in self.lights.fleets.values():
                await fleet.stop()
        for bus in reversed(self._buses.values()):
            await bus.__aexit__(exc_type, exc, tb)
        self._buses.clear()
        await self.modbus.stop()
