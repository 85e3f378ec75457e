"""An inverter and its grid meter on one unit id (as SolarEdge units serve them): the driver
reads both in one request and keeps them apart -- the inverter's channels from its inverter
model, the meter's under ``<name>:meter`` from the meter model -- instead of reporting the
meter's power as the inverter's (−2,150 W for 7,345 W) and losing values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from kernel.clock import ManualClock
from kernel.readings import Reading
from protocols.modbus.connection import ModbusConnection
from protocols.sunspec.device import SunSpecInverter, open_sunspec
from protocols.sunspec.mapping import meter_part_id, meter_part_of
from sims.modbus.inverter_meter import InverterWithMeterSim
from sims.modbus.server import GatewayServer
from sims.profiles import ClearSkyPv, HouseholdLoad

if TYPE_CHECKING:
    from conftest import Serve

NOON = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)  # Karlsruhe, clear sky


def by_device(readings: list[Reading]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for r in readings:
        out.setdefault(r.device_id, {})[r.channel] = r.value
    return out


async def test_the_inverter_and_its_meter_on_one_unit_are_two_devices() -> None:
    clock = ManualClock(NOON)
    sim = InverterWithMeterSim(
        clock,
        rated_w=10_000,
        pv=ClearSkyPv(lat=49.0, lon=8.4, kwp=10.0),
        load=HouseholdLoad(annual_kwh=4_000),
        cloud_seed=None,
    )
    gw = GatewayServer({1: sim})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            dev = await open_sunspec("se-1", conn, 1, clock)
            assert isinstance(dev, SunSpecInverter)
            assert dev.map.ids == (1, 103, 120, 123, 1, 203)
            assert list(dev.meter_parts) == ["se-1:meter"]
            requests = len(sim.read_log)
            got = by_device(await dev.read())
            # one poll: the inverter's models in one request, the meter's 203 (107 registers;
            # a request takes at most 125) in a second
            assert len(sim.read_log) == requests + 2
            clock.advance(900)
            later = by_device(await dev.read())
            power = await dev.read_power_w()
    finally:
        await gw.stop()
    inverter, meter = got["se-1"], got["se-1:meter"]
    assert set(got) == {"se-1", "se-1:meter"}
    # the inverter produces, the household exports the surplus at its grid point
    assert inverter["power_w"] is not None
    assert inverter["power_w"] > 5_000
    assert meter["power_w"] is not None
    assert meter["power_w"] < 0
    # the meter sees the household's load minus the inverter's output (a few hundred W)
    assert 0 < meter["power_w"] + inverter["power_w"] < 2_000
    # nothing of the meter's in the inverter's channels, nothing lost
    assert "import_energy_wh" not in inverter
    assert inverter["frequency_hz"] == 50.0
    assert inverter["voltage_l1_v"] == 230.0
    assert inverter["pv_energy_wh"] is not None
    assert inverter["rated_power_w"] == 10_000
    assert inverter["power_limit_pct"] == 100.0
    assert meter["import_energy_wh"] == 2_000_000
    assert meter["export_energy_wh"] is not None
    assert meter["export_energy_wh"] >= 500_000
    assert meter["frequency_hz"] == 50.0
    assert meter["power_l1_w"] == pytest.approx(meter["power_w"] / 3, abs=1.0)
    assert "pv_energy_wh" not in meter
    # a quarter-hour later: the export counter grew by the exported energy, the inverter's
    # counter by the produced energy
    exported_wh = later["se-1:meter"]["export_energy_wh"] - meter["export_energy_wh"]  # type: ignore[operator]
    produced_wh = later["se-1"]["pv_energy_wh"] - inverter["pv_energy_wh"]  # type: ignore[operator]
    assert 0 < exported_wh < produced_wh
    assert later["se-1"]["power_w"] == pytest.approx(sim.power_w, abs=1.0)
    assert power.device_id == "se-1"
    assert power.value == pytest.approx(sim.power_w, abs=1.0)


async def test_two_meters_on_the_unit_keep_their_own_values(serve_image: Serve) -> None:
    chain = [
        (1, {"Mn": "SolarEdge"}),
        (103, {"W": 7345, "W_SF": 0, "WH": 1_234_567, "WH_SF": 0, "Hz": 5002, "Hz_SF": -2}),
        (120, {"WRtg": 10000, "WRtg_SF": 0}),
        (1, {"Mn": "SolarEdge", "Md": "meter 1"}),
        (203, {"W": -2150, "W_SF": 0, "TotWhImp": 800_000, "TotWhExp": 300_000,
               "TotWh_SF": 0, "Hz": 4998, "Hz_SF": -2}),
        (1, {"Mn": "SolarEdge", "Md": "meter 2"}),
        (203, {"W": 1200, "W_SF": 0, "TotWhImp": 50_000, "TotWhExp": 0, "TotWh_SF": 0}),
    ]  # fmt: skip
    clock = ManualClock(NOON)
    async with serve_image(chain) as (_image, conn):
        dev = await open_sunspec("se-2", conn, 1, clock)
        got = by_device(await dev.read())
    assert got["se-2"]["power_w"] == 7345  # not −2150, not 1200
    assert got["se-2"]["frequency_hz"] == pytest.approx(50.02)
    assert got["se-2"]["pv_energy_wh"] == 1_234_567
    assert got["se-2:meter"]["power_w"] == -2150
    assert got["se-2:meter"]["frequency_hz"] == pytest.approx(49.98)
    assert (got["se-2:meter"]["import_energy_wh"], got["se-2:meter"]["export_energy_wh"]) == (
        800_000,
        300_000,
    )
    assert got["se-2:meter2"]["power_w"] == 1200
    assert got["se-2:meter2"]["import_energy_wh"] == 50_000


async def test_a_unit_that_falls_silent_takes_both_parts_with_it() -> None:
    clock = ManualClock(NOON)
    sim = InverterWithMeterSim(clock, cloud_seed=None)
    gw = GatewayServer({1: sim})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=0.3) as conn:
            dev = await open_sunspec("se-3", conn, 1, clock)
            gw.silence(1)
            readings = await dev.read()
    finally:
        await gw.stop()
    assert {r.device_id for r in readings} == {"se-3", "se-3:meter"}
    assert all(not r.available for r in readings)
    assert {r.channel for r in readings if r.device_id == "se-3:meter"} >= {
        "power_w",
        "import_energy_wh",
        "export_energy_wh",
    }


def test_meter_part_ids() -> None:
    assert [meter_part_id("se-1", i) for i in range(3)] == [
        "se-1:meter",
        "se-1:meter2",
        "se-1:meter3",
    ]
    assert meter_part_of("se-1:meter") == ("se-1", 0)
    assert meter_part_of("se-1:meter3") == ("se-1", 2)
    for other in ("se-1", "se-1:meter1", "se-1:meter02", "se-1:inverter", "se-1:meterx"):
        assert meter_part_of(other) is None
