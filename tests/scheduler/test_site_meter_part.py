"""A member's grid meter on its SunSpec inverter's unit id (SolarEdge): the site file names it
``<inverter>:meter``; the running service reads both parts of the unit in one poll and keeps
them apart, stores the meter's counters under the meter's id, and counts the member's
consumption from the meter, not from the inverter's power."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.service import Service
from kernel.clock import SimClock
from kernel.errors import ConfigError
from scheduler.community import community_now
from scheduler.site import site_from_data
from scheduler.site.ratings import device_facts
from sims.modbus.fleet import ModbusFleet
from sims.modbus.inverter_meter import InverterWithMeterSim
from sims.profiles import ClearSkyPv, HouseholdLoad
from store.schema import raw_readings
from tests.conftest import BrokerAddress
from tests.scheduler.test_service import settings_for

NOON = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


def site_data(fleet: ModbusFleet | None, meter: str = "se-1:meter", pv: str = "se-1") -> Any:
    def dev(name: str, driver: str, unit_id: int) -> dict[str, Any]:
        ep = fleet.endpoint(name) if fleet is not None else None
        return {"name": name, "driver": driver, "host": ep.host if ep else "10.0.0.5",
                "port": ep.port if ep else 502, "unit_id": ep.unit_id if ep else unit_id,
                "timeout_s": 0.5}  # fmt: skip

    devices = [dev("se-1", "sunspec", 1)]
    if fleet is None:
        devices.append(dev("hh-meter", "eastron_sdm630", 2))
    return {
        "site": {"name": "Solaredge", "latitude": 51.37, "longitude": 7.70},
        "devices": devices,
        "members": [
            {
                "id": "h1",
                "name": "Haus",
                "meter": meter,
                "pv": [{"device": pv, "rated_power_w": 10_000}],
            }
        ],
        "tariffs": [
            {
                "name": "standard",
                "valid_from": "2026-01-01T00:00:00+01:00",
                "supplier_price_eur_per_kwh": "0.32",
                "community_price_eur_per_kwh": "0.22",
                "feed_in_price_eur_per_kwh": "0.08",
            }
        ],
        "communities": [
            {
                "id": "q",
                "name": "Quartier",
                "members": [{"member": "h1"}],
                "keys": [{"kind": "dynamic"}],
                "tariffs": ["standard"],
            }
        ],
        "dispatch": {"poll_interval_s": 30, "revert_s": 120, "read_timeout_s": 1.0},
    }


def test_a_member_names_the_meter_on_its_inverters_unit() -> None:
    site = site_from_data(site_data(None))
    assert site.members[0].meter == "se-1:meter"
    facts = device_facts(site)["se-1:meter"]
    assert {"import_energy_wh", "export_energy_wh"} <= facts.channels
    assert facts.rating_w == 3 * 63 * 230.0  # the member's grid connection
    assert facts.counters["import_energy_wh"].rollover_wh == 2**32


@pytest.mark.parametrize(
    ("meter", "pv", "field", "name"),
    [
        ("hh-meter:meter", "se-1", "members.0.meter", "hh-meter:meter"),  # not a SunSpec device
        ("se-9:meter", "se-1", "members.0.meter", "se-9:meter"),
        ("se-1:meter", "se-1:meter", "members.0.pv.0.device", "se-1:meter"),  # not a PV
        ("se-1:meterx", "se-1", "members.0.meter", "se-1:meterx"),
    ],
)
def test_only_a_sunspec_device_has_a_meter_part(meter: str, pv: str, field: str, name: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown device '{name}'") as err:
        site_from_data(site_data(None, meter=meter, pv=pv))
    assert err.value.field == field


@pytest.fixture
async def fleet() -> AsyncIterator[ModbusFleet]:
    clock = SimClock(NOON, speed=60)
    f = ModbusFleet(clock)
    sim = InverterWithMeterSim(clock, rated_w=10_000, pv=ClearSkyPv(lat=51.37, lon=7.70, kwp=10),
                               load=HouseholdLoad(annual_kwh=4_000), cloud_seed=None)  # fmt: skip
    f.add("se-1", sim, gateway="gw-se", unit_id=1, kind="sunspec_inverter_meter")
    async with f:
        yield f


async def test_the_service_keeps_the_inverter_and_its_meter_apart(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    site = site_from_data(site_data(fleet))
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
    sim = fleet.sim("se-1")
    assert isinstance(sim, InverterWithMeterSim)
    async with Service(settings, site, fleet.clock) as service:
        await service.wait_for_cycle(timeout_s=10)
        snap = (await service.wait_for_cycle(timeout_s=10)).snapshot
        inverter, meter = snap.value("se-1", "power_w"), snap.value("se-1:meter", "power_w")
        assert inverter is not None
        assert meter is not None
        assert inverter > 5_000  # noon in June: producing
        assert meter < 0  # the household exports the surplus
        assert snap.value("se-1", "import_energy_wh") is None  # nothing of the meter's
        assert snap.value("se-1:meter", "import_energy_wh") == pytest.approx(sim.import_wh, 1)
        # the member's consumption is meter + PV: a household's noon load, not −2 kW
        now = community_now(site, "q", snap)
        assert (now.unread, now.generation_w) == (0, inverter)
        assert 0 < now.consumption_w < 2_000
        assert now.grid_w == meter
        await service.wait_for_cycle(timeout_s=10)
        async with service.store.engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(func.count())
                    .select_from(raw_readings)
                    .where(
                        raw_readings.c.device_id == "se-1:meter",
                        raw_readings.c.channel == "export_energy_wh",
                    )
                )
            ).scalar_one()
        assert stored >= 1
