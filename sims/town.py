"""A simulated town: Modbus households and PV plants, MQTT streetlights, LoRaWAN traffic sensors.

Start it from a small YAML file or from Python; every device answers on a free loopback port
(Modbus) or on the given broker (MQTT), and everything follows one clock::

    config = load_town("sims/default_town.yaml")
    async with SimTown(config, clock, broker_host, broker_port) as town:
        town.modbus.endpoints        # name → host, port, unit id, kind
        town.light_ids               # streetlight node ids
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from protocols.clock import Clock
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig
from protocols.yamlconf import load_yaml_file
from sims.modbus.fleet import ModbusFleet
from sims.profiles import ClearSkyPv
from sims.streetlight import LuminaireSpec, NodeLogic, StreetlightFleet
from sims.traffic import SensorIdentity, TrafficSensor

DEFAULT_TOWN = Path(__file__).with_name("default_town.yaml")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HouseholdSpec(_Spec):
    prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    gateway: str
    annual_kwh: float = Field(default=4000.0, gt=0)
    kwp: float | None = Field(default=8.0, gt=0)
    battery_wh: float | None = Field(default=None, gt=0)
    meter: Literal["sdm630", "sunspec"] = "sdm630"
    cloud_seed: int = 0


class PlantSpec(_Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    gateway: str
    kwp: float = Field(gt=0)
    tilt_deg: float = Field(default=30.0, ge=0, le=90)
    azimuth_deg: float = Field(default=180.0, ge=0, lt=360)
    cloud_seed: int = 0


class StreetSpec(_Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    luminaires: int = Field(default=25, ge=1, le=1000)
    rated_power_w: float = Field(default=40.0, gt=0)
    sensor_dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    network: Literal["chirpstack", "tts"] = "chirpstack"


class TownConfig(_Spec):
    name: str = "Waldstadt"
    latitude: float = Field(default=51.37, ge=-90, le=90)
    longitude: float = Field(default=7.70, ge=-180, le=180)
    timezone: str = "Europe/Berlin"
    start: AwareDatetime | None = None
    speed: float = Field(default=144.0, gt=0)
    households: list[HouseholdSpec] = []
    plants: list[PlantSpec] = []
    streets: list[StreetSpec] = []


def load_town(path: Path | str = DEFAULT_TOWN) -> TownConfig:
    """Read a town file; unknown keys and bad values are ``ConfigError``s with the line."""
    return load_yaml_file(TownConfig, path)


def light_ids(street: StreetSpec) -> list[str]:
    return [f"{street.name}-{i:02d}" for i in range(1, street.luminaires + 1)]


class SimTown:
    """Starts and stops the simulated devices of a :class:`TownConfig`."""

    def __init__(
        self,
        config: TownConfig,
        clock: Clock,
        broker_host: str,
        broker_port: int,
        *,
        light_prefix: str = "waldstadt/lights",
        report_interval_s: float = 60.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.modbus = ModbusFleet(clock)
        for h in config.households:
            self.modbus.add_household(
                h.prefix,
                gateway=h.gateway,
                annual_kwh=h.annual_kwh,
                kwp=h.kwp,
                battery_wh=h.battery_wh,
                meter=h.meter,
                lat=config.latitude,
                lon=config.longitude,
                cloud_seed=h.cloud_seed,
            )
        for p in config.plants:
            pv = ClearSkyPv(
                lat=config.latitude,
                lon=config.longitude,
                kwp=p.kwp,
                tilt_deg=p.tilt_deg,
                azimuth_deg=p.azimuth_deg,
            )
            self.modbus.add_inverter(
                p.name, gateway=p.gateway, rated_w=p.kwp * 1000, pv=pv, cloud_seed=p.cloud_seed
            )
        self._bus = Bus(
            BusConfig(
                client_id=f"sim-town-{uuid.uuid4().hex[:8]}", host=broker_host, port=broker_port
            )
        )
        self.light_ids: list[str] = []
        self.lights: StreetlightFleet | None = None
        self.sensors: dict[str, TrafficSensor] = {}
        self._light_prefix = light_prefix
        self._report_interval_s = report_interval_s
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self.modbus.start()
        await self._bus.__aenter__()
        now = self.clock.now()
        nodes: list[NodeLogic] = []
        for index, street in enumerate(self.config.streets):
            spec = LuminaireSpec(rated_power_w=street.rated_power_w)
            nodes.extend(NodeLogic(node_id, now, spec) for node_id in light_ids(street))
            if street.sensor_dev_eui:
                ident = SensorIdentity(street.sensor_dev_eui, f"traffic-{street.name}")
                self.sensors[street.name] = TrafficSensor(
                    self._bus,
                    self.clock,
                    ident,
                    network=street.network,
                    zone=self.config.timezone,
                    seed=index + 1,
                )
        self.light_ids = [n.node_id for n in nodes]
        if nodes:
            self.lights = StreetlightFleet(
                self._bus,
                self.clock,
                nodes,
                prefix=self._light_prefix,
                report_interval_s=self._report_interval_s,
            )
            await self.lights.start()
            self._tasks.append(asyncio.create_task(self.lights.run(), name="sim streetlights"))
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
            await self.lights.stop()
        await self._bus.__aexit__(exc_type, exc, tb)
        await self.modbus.stop()
