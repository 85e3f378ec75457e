"""Start a set of simulated Modbus devices behind simulated gateways.

::

    fleet = ModbusFleet(clock)
    fleet.add_household("h1", gateway="gw-a", annual_kwh=4500, kwp=9.9, battery_wh=10_000,
                        ev=EvParams(energy_need_wh=12_000), heater=HeaterParams())
    fleet.add_inverter("school-pv", gateway="gw-b", unit_id=1, rated_w=30_000)
    async with fleet:
        ep = fleet.endpoint("h1-meter")        # host, port, unit id
        fleet.silence("h1-battery")            # stops answering (fault tests)
        await fleet.stop_gateway("gw-b")       # the whole gateway goes away …
        await fleet.start_gateway("gw-b")      # … and comes back on the same port

Devices added under the same ``gateway`` share one TCP port (distinct unit ids), so the
client's "one connection per gateway" path is exercised. All devices follow one clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

from kernel.clock import Clock
from sims.modbus.battery import BatterySim
from sims.modbus.inverter import SunSpecInverterSim
from sims.modbus.loads import EvChargerSim, EvParams, HeaterParams, StorageHeaterSim
from sims.modbus.meters import Household, Sdm630Sim, SunSpecMeterSim
from sims.modbus.server import GatewayServer, SimUnit
from sims.profiles import ClearSkyPv, HouseholdLoad, LoadProfile

U = TypeVar("U", bound=SimUnit)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a simulated device answers."""

    name: str
    kind: str
    gateway: str
    host: str
    port: int
    unit_id: int


class ModbusFleet:
    """Simulated devices by name, grouped into gateways (one pymodbus server each)."""

    def __init__(self, clock: Clock, host: str = "127.0.0.1") -> None:
        self.clock = clock
        self.host = host
        self.gateways: dict[str, GatewayServer] = {}
        self._devices: dict[str, tuple[str, int, str, SimUnit]] = {}

    def add(self, name: str, sim: U, *, gateway: str, unit_id: int, kind: str) -> U:
        """Put ``sim`` behind ``gateway`` at ``unit_id``."""
        if name in self._devices:
            raise ValueError(f"simulated device {name!r} exists already")
        if not 1 <= unit_id <= 247:
            raise ValueError(f"{name}: unit id {unit_id} outside 1..247")
        gw = self.gateways.setdefault(gateway, GatewayServer(host=self.host))
        if unit_id in gw.units:
            raise ValueError(f"{name}: gateway {gateway} has unit {unit_id} already")
        gw.units[unit_id] = sim
        self._devices[name] = (gateway, unit_id, kind, sim)
        return sim

    def _next_unit(self, gateway: str) -> int:
        gw = self.gateways.get(gateway)
        return 1 if gw is None or not gw.units else max(gw.units) + 1

    def add_inverter(
        self,
        name: str,
        *,
        gateway: str,
        unit_id: int | None = None,
        rated_w: float = 10_000.0,
        pv: ClearSkyPv | None = None,
        cloud_seed: int | None = 0,
        energy_wh: float = 1_000.0,
    ) -> SunSpecInverterSim:
        sim = SunSpecInverterSim(
            self.clock,
            rated_w=rated_w,
            pv=pv,
            cloud_seed=cloud_seed,
            energy_wh=energy_wh,
            serial=name,
        )
        uid = unit_id or self._next_unit(gateway)
        return self.add(name, sim, gateway=gateway, unit_id=uid, kind="sunspec_inverter")

    def add_battery(
        self, name: str, *, gateway: str, unit_id: int | None = None, **kw: float
    ) -> BatterySim:
        sim = BatterySim(self.clock, **kw)
        uid = unit_id or self._next_unit(gateway)
        return self.add(name, sim, gateway=gateway, unit_id=uid, kind="battery_inverter")

    def add_sdm630(
        self, name: str, household: Household, *, gateway: str, unit_id: int | None = None
    ) -> Sdm630Sim:
        sim = Sdm630Sim(self.clock, household)
        uid = unit_id or self._next_unit(gateway)
        return self.add(name, sim, gateway=gateway, unit_id=uid, kind="eastron_sdm630")

    def add_sunspec_meter(
        self,
        name: str,
        household: Household,
        *,
        gateway: str,
        unit_id: int | None = None,
        max_power_w: float = 30_000.0,
    ) -> SunSpecMeterSim:
        sim = SunSpecMeterSim(self.clock, household, max_power_w=max_power_w)
        uid = unit_id or self._next_unit(gateway)
        return self.add(name, sim, gateway=gateway, unit_id=uid, kind="sunspec_meter_203")

    def add_ev_charger(
        self,
        name: str,
        params: EvParams | None = None,
        *,
        gateway: str,
        unit_id: int | None = None,
        tz: str = "Europe/Berlin",
    ) -> EvChargerSim:
        sim = EvChargerSim(self.clock, params, tz=tz)
        uid = unit_id or self._next_unit(gateway)
        return self.add(name, sim, gateway=gateway, unit_id=uid, kind="ev_charger")

    def add_storage_heater(
        self,
        name: str,
        params: HeaterParams | None = None,
        *,
        gateway: str,
        unit_id: int | None = None,
        tz: str = "Europe/Berlin",
    ) -> StorageHeaterSim:
        sim = StorageHeaterSim(self.clock, params, tz=tz)
        uid = unit_id or self._next_unit(gateway)
        return self.add(name, sim, gateway=gateway, unit_id=uid, kind="storage_heater")

    def add_household(
        self,
        prefix: str,
        *,
        gateway: str,
        annual_kwh: float = 4000.0,
        kwp: float | None = 8.0,
        battery_wh: float | None = 10_000.0,
        meter: str = "sdm630",
        lat: float = 49.01,
        lon: float = 8.40,
        cloud_seed: int = 0,
        profile: LoadProfile = "H25",
        tilt_deg: float = 30.0,
        azimuth_deg: float = 180.0,
        ev: EvParams | None = None,
        heater: HeaterParams | None = None,
        tz: str = "Europe/Berlin",
    ) -> Household:
        """A household (or a school, ``profile="G25"``) on one gateway: ``{prefix}-meter``
        (SDM630 or SunSpec 203 by ``meter``), ``{prefix}-pv`` (SunSpec inverter),
        ``{prefix}-battery``, ``{prefix}-ev`` (wallbox) and ``{prefix}-heater`` (storage
        heater) as given, the meter measuring load + EV + heater − PV + battery at the grid
        point."""
        if meter not in ("sdm630", "sunspec"):
            raise ValueError(f"{prefix}: meter must be 'sdm630' or 'sunspec', got {meter!r}")
        house = Household(load=HouseholdLoad(annual_kwh=annual_kwh, tz=tz, profile=profile))
        if kwp:
            pv = ClearSkyPv(lat=lat, lon=lon, kwp=kwp, tilt_deg=tilt_deg, azimuth_deg=azimuth_deg)
            house.pv = self.add_inverter(
                f"{prefix}-pv", gateway=gateway, rated_w=kwp * 1000.0, pv=pv, cloud_seed=cloud_seed
            )
        if battery_wh:
            house.battery = self.add_battery(
                f"{prefix}-battery", gateway=gateway, capacity_wh=battery_wh
            )
        if ev is not None:
            house.ev = self.add_ev_charger(f"{prefix}-ev", ev, gateway=gateway, tz=tz)
        if heater is not None:
            house.heater = self.add_storage_heater(
                f"{prefix}-heater", heater, gateway=gateway, tz=tz
            )
        # the highest power the meter must show: PV export, or household, wallbox and heater
        peak = max((kwp or 0.0) * 1000.0, 15_000.0 + (ev.max_w if ev else 0.0))
        peak += heater.max_w if heater else 0.0
        self._add_meter(f"{prefix}-meter", house, meter, gateway, peak)
        return house

    def add_plant_meter(
        self,
        name: str,
        inverter: SunSpecInverterSim,
        *,
        gateway: str,
        meter: str = "sunspec",
        own_use_kwh: float = 500.0,
        tz: str = "Europe/Berlin",
    ) -> Household:
        """The grid meter of a PV plant: the plant's own small consumption (monitoring,
        inverter standby; G25 scaled to ``own_use_kwh``) minus its output."""
        house = Household(load=HouseholdLoad(annual_kwh=own_use_kwh, tz=tz, profile="G25"))
        house.pv = inverter
        self._add_meter(name, house, meter, gateway, inverter.rated_w)
        return house

    def _add_meter(
        self, name: str, house: Household, meter: str, gateway: str, peak_w: float
    ) -> None:
        if meter == "sdm630":
            self.add_sdm630(name, house, gateway=gateway)
        elif meter == "sunspec":
            self.add_sunspec_meter(name, house, gateway=gateway, max_power_w=peak_w)
        else:
            raise ValueError(f"{name}: meter must be 'sdm630' or 'sunspec', got {meter!r}")

    async def start(self) -> None:
        for gw in self.gateways.values():
            await gw.start()

    async def stop(self) -> None:
        for gw in self.gateways.values():
            await gw.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def endpoint(self, name: str) -> Endpoint:
        gateway, unit_id, kind, _ = self._devices[name]
        gw = self.gateways[gateway]
        if not gw.port:
            raise RuntimeError(f"gateway {gateway} is not started yet")
        return Endpoint(name, kind, gateway, gw.host, gw.port, unit_id)

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {name: self.endpoint(name) for name in self._devices}

    def sim(self, name: str) -> SimUnit:
        return self._devices[name][3]

    def silence(self, name: str, silent: bool = True) -> None:
        """Make one device stop answering (its gateway keeps serving the others)."""
        gateway, unit_id, _, _ = self._devices[name]
        self.gateways[gateway].silence(unit_id, silent)

    async def stop_gateway(self, gateway: str) -> None:
        await self.gateways[gateway].stop()

    async def start_gateway(self, gateway: str) -> None:
        await self.gateways[gateway].start()
