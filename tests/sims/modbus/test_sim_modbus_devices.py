"""The simulated devices over real sockets, read with the production drivers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.clock import ManualClock
from kernel.readings import Quality
from protocols.capabilities import AcceptsBatteryPowerW
from protocols.modbus.codec import decode
from protocols.modbus.connection import ModbusPool
from protocols.modbus.driver import template_device
from protocols.modbus.template import load_template
from protocols.sunspec.device import open_sunspec
from sims.modbus.battery import BatterySim
from sims.modbus.fleet import ModbusFleet
from sims.modbus.inverter import SunSpecInverterSim
from sims.modbus.meters import Household, Sdm630Sim, SunSpecMeterSim
from sims.profiles import HouseholdLoad

NOON = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)


async def test_a_household_on_one_gateway_shares_one_connection_and_adds_up() -> None:
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    house = fleet.add_household("h1", gateway="gw-1", annual_kwh=4000, kwp=8.0, battery_wh=10_000)
    async with fleet, ModbusPool() as pool:
        eps = fleet.endpoints
        assert {e.port for e in eps.values()} == {fleet.gateways["gw-1"].port}
        assert sorted(e.unit_id for e in eps.values()) == [1, 2, 3]
        conn = pool.connection(eps["h1-meter"].host, eps["h1-meter"].port)
        meter = template_device(
            "h1-meter", load_template("eastron_sdm630"), conn, eps["h1-meter"].unit_id, clock
        )
        battery = template_device(
            "h1-battery", load_template("battery_inverter"), conn, eps["h1-battery"].unit_id, clock
        )
        pv = await open_sunspec("h1-pv", conn, eps["h1-pv"].unit_id, clock)
        assert isinstance(battery, AcceptsBatteryPowerW)
        await battery.set_battery_power_w(2000.0, 900, "b-1")
        clock.advance(1.0)
        m = {r.channel: r.value for r in await meter.read()}
        p = {r.channel: r.value for r in await pv.read()}
        b = {r.channel: r.value for r in await battery.read()}
        assert conn.connects == 1
    load_w = house.load.power_w(clock.now())
    assert b["battery_power_w"] == 2000.0
    assert p["power_w"] is not None
    assert p["power_w"] > 0
    # net at the grid point = load − PV + battery charging, + = import
    assert m["power_w"] == pytest.approx(load_w - p["power_w"] + 2000.0, abs=2.0)


async def test_silencing_one_device_leaves_its_gateway_neighbours_answering() -> None:
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    fleet.add_household("h", gateway="gw", kwp=5.0, battery_wh=None)
    async with fleet, ModbusPool(timeout_s=0.5) as pool:
        ep_m, ep_pv = fleet.endpoint("h-meter"), fleet.endpoint("h-pv")
        conn = pool.connection(ep_m.host, ep_m.port)
        meter = template_device(
            "h-meter", load_template("eastron_sdm630"), conn, ep_m.unit_id, clock
        )
        pv = await open_sunspec("h-pv", conn, ep_pv.unit_id, clock)
        fleet.silence("h-meter")
        m = await meter.read()
        p = await pv.read()
    assert all(r.quality is Quality.UNAVAILABLE for r in m)
    assert any(r.channel == "power_w" and r.available for r in p)


async def test_battery_follows_setpoints_within_limits_and_reverts_to_idle() -> None:
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    sim = fleet.add_battery(
        "bat", gateway="gw", capacity_wh=1000.0, max_charge_w=3000.0, soc_pct=90.0
    )
    async with fleet, ModbusPool() as pool:
        ep = fleet.endpoint("bat")
        bat = template_device(
            "bat",
            load_template("battery_inverter"),
            pool.connection(ep.host, ep.port),
            ep.unit_id,
            clock,
        )
        assert isinstance(bat, AcceptsBatteryPowerW)
        await bat.set_battery_power_w(4000.0, 3600, "c-1")  # clamped to the template's 5 kW
        first = {r.channel: r.value for r in await bat.read()}
        clock.advance(60.0)  # 3 kW for 60 s = 50 Wh: 900 → 950 Wh
        mid = {r.channel: r.value for r in await bat.read()}
        clock.advance(120.0)  # full after another 60 s
        full = {r.channel: r.value for r in await bat.read()}
        await bat.set_battery_power_w(-2000.0, 30, "c-2")
        clock.advance(31.0)  # revert time over: idle
        idle = {r.channel: r.value for r in await bat.read()}
    assert first["battery_power_w"] == 3000.0  # the device's own limit
    assert mid["stored_energy_wh"] == 950.0
    assert full["soc_pct"] == 100.0
    assert full["battery_power_w"] == 0.0
    assert full["operating_state"] == 3.0  # full
    assert idle["battery_power_w"] == 0.0
    assert idle["operating_state"] == 0.0
    assert sim.stored_wh == pytest.approx(1000.0 - 2000.0 * 30 / 3600)
    assert sim.reverts == 1


def test_inverter_energy_counter_grows_with_the_energy_produced() -> None:
    clock = ManualClock(NOON)
    sim = SunSpecInverterSim(clock, rated_w=10_000.0, cloud_seed=None, energy_wh=5000.0)
    p0 = sim.power_w
    clock.advance(600.0)
    sim.refresh()
    produced = sim.energy_wh - 5000.0
    assert produced == pytest.approx((p0 + sim.power_w) / 2 * 600 / 3600, rel=0.01)
    assert decode(sim.image.get_regs(103, "WH"), "acc32") == int(sim.energy_wh)


def test_inverter_sleeps_at_night() -> None:
    clock = ManualClock(datetime(2026, 6, 21, 23, 0, tzinfo=UTC))
    sim = SunSpecInverterSim(clock, cloud_seed=3)
    assert sim.power_w == 0.0
    assert sim.image.get_regs(103, "St") == [2]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=7200.0), min_size=1, max_size=15),
    st.floats(min_value=-5000.0, max_value=5000.0),
)
def test_meter_energy_registers_only_grow(steps: list[float], battery_w: float) -> None:
    clock = ManualClock(NOON)
    bat = BatterySim(clock, capacity_wh=20_000.0, max_charge_w=5000.0, max_discharge_w=5000.0)
    bat.setpoint_w, bat.enabled = battery_w, True
    house = Household(
        load=_LOAD, pv=SunSpecInverterSim(clock, rated_w=8000.0, pv=None, cloud_seed=1), battery=bat
    )
    sdm = Sdm630Sim(clock, house)
    ss = SunSpecMeterSim(clock, house)
    last = (sdm.import_wh, sdm.export_wh, ss.import_wh, ss.export_wh)
    for s in steps:
        clock.advance(s)
        sdm.refresh()
        ss.refresh()
        now = (sdm.import_wh, sdm.export_wh, ss.import_wh, ss.export_wh)
        assert all(b >= a for a, b in zip(last, now, strict=True))
        last = now
        regs = sdm.read("input", 72, 4)
        assert regs is not None
        assert decode(regs[0:2], "float32") == pytest.approx(sdm.import_wh / 1000.0, rel=1e-6)


_LOAD = HouseholdLoad(annual_kwh=5000.0)


@pytest.mark.slow
async def test_on_a_fast_sim_clock_the_inverter_reverts_unless_the_writer_refreshes() -> None:
    """Speed 300: a 600 s revert time passes in 2 s of real time, over real sockets; cycles
    every 60 s of clock time keep the limit, and once they stop it lapses."""
    from kernel.clock import SimClock
    from kernel.commands import Command, CommandKind
    from protocols.sunspec.device import SunSpecInverter
    from scheduler.writer import CommandWriter

    clock = SimClock(NOON, speed=300.0)
    fleet = ModbusFleet(clock)
    sim = fleet.add_inverter("pv", gateway="gw", rated_w=10_000.0, cloud_seed=None)
    async with fleet, ModbusPool() as pool:
        ep = fleet.endpoint("pv")
        inv = await open_sunspec("pv", pool.connection(ep.host, ep.port), ep.unit_id, clock)
        assert isinstance(inv, SunSpecInverter)
        writer = CommandWriter({"pv": inv}, clock)
        cmd = Command("k-1", "pv", CommandKind.POWER_LIMIT_PCT, 20.0,
                      NOON + timedelta(days=1), revert_s=600)  # fmt: skip
        await writer.write([cmd])
        refreshes = 0
        for _ in range(25):  # 5 s real = 1500 s of clock time: 2.5 revert times
            await asyncio.sleep(0.2)  # a cycle every 60 s of clock time
            refreshes += len(await writer.write([]))
        kept = {r.channel: r.value for r in await inv.read()}
        assert sim.reverts == 0
        await asyncio.sleep(2.5)  # 750 s without a cycle
        after = {r.channel: r.value for r in await inv.read()}
    assert kept["power_limit_pct"] == pytest.approx(20.0)
    assert refreshes >= 4  # every 300 s of clock time
    assert after["power_limit_pct"] == 100.0
    assert sim.reverts == 1
