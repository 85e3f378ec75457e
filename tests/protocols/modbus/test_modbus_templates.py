"""Register templates: strict YAML, and every shipped template read from a simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.clock import ManualClock
from kernel.errors import ConfigError
from kernel.readings import Quality
from protocols.capabilities import (
    AcceptsBatteryPowerW,
    AcceptsLoadPowerW,
    Device,
    ReadsEnergyWh,
    ReadsPowerW,
)
from protocols.modbus.connection import ModbusPool
from protocols.modbus.driver import template_device
from protocols.modbus.template import TEMPLATE_DIR, load_template, template_names
from sims.modbus.meters import Household, Sdm630Sim
from sims.modbus.server import GatewayServer
from sims.modbus.template_sim import TemplateSim
from sims.profiles import HouseholdLoad

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


def test_the_required_templates_ship() -> None:
    assert {
        "eastron_sdm630",
        "sunspec_meter_203",
        "battery_inverter",
        "ev_charger",
        "storage_heater",
    } <= set(template_names())


def test_unknown_key_is_a_config_error_naming_key_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "meter.yaml"
    bad.write_text("name: m\nchannels:\n  power_w: {address: 52, type: float32, scael: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_template(bad)
    err = info.value
    assert err.field == "channels.power_w.scael"
    assert "unknown key" in err.reason
    assert err.where == "meter.yaml, line 3"


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "m2.yaml"
    bad.write_text("name: m\nchanels: {}\nchannels:\n  power_w: {address: 1}\n")
    with pytest.raises(ConfigError, match="chanels: unknown key"):
        load_template(bad)


def test_an_input_register_cannot_be_a_setpoint(tmp_path: Path) -> None:
    bad = tmp_path / "m3.yaml"
    bad.write_text(
        "name: m\nchannels:\n  power_w: {address: 1}\n"
        "setpoints:\n  battery_power_w: {address: 5, table: input}\n"
    )
    with pytest.raises(ConfigError, match=r"setpoints\.battery_power_w"):
        load_template(bad)


def _values_for(name: str) -> dict[str, float]:
    """Distinct, exactly representable values per channel (so a mix-up of two fails)."""
    template = load_template(name)
    values: dict[str, float] = {}
    for i, (channel, reg) in enumerate(template.channels.items()):
        type_ = reg.type or template.defaults.type
        base = 100.0 + 7 * i
        if channel.endswith("_wh"):
            base = 1_000_000.0 + 1000 * i
        if type_.startswith("uint") and reg.scale < 1:
            base = 50.0 + i
        values[channel] = base * (-1 if type_.startswith("int") and i % 2 else 1)
    return values


@pytest.mark.parametrize("name", sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml")))
async def test_every_template_reads_from_a_simulator(name: str) -> None:
    template = load_template(name)
    values = _values_for(name)
    clock = ManualClock(T0)
    gw = GatewayServer({3: TemplateSim(template, values)})
    await gw.start()
    try:
        async with ModbusPool(timeout_s=2.0) as pool:
            dev = template_device(
                f"dev-{name}", template, pool.connection(gw.host, gw.port), 3, clock
            )
            readings = {r.channel: r for r in await dev.read()}
    finally:
        await gw.stop()
    assert set(readings) == set(template.channels)
    for channel, expected in values.items():
        r = readings[channel]
        assert r.quality is Quality.GOOD, channel
        assert r.value == pytest.approx(expected, rel=1e-6, abs=1e-3), channel
        assert r.ts == T0
    assert isinstance(dev, Device)
    assert isinstance(dev, ReadsPowerW) == ("power_w" in template.channels)
    assert isinstance(dev, AcceptsBatteryPowerW) == ("battery_power_w" in template.setpoints)
    assert isinstance(dev, AcceptsLoadPowerW) == ("load_power_w" in template.setpoints)


async def test_sdm630_template_against_the_datasheet_simulator() -> None:
    """The SDM630 simulator is written from the datasheet, not from the template."""
    clock = ManualClock(T0)
    house = Household(load=HouseholdLoad(annual_kwh=4000))
    sim = Sdm630Sim(clock, house, import_wh=1_234_000.0, export_wh=321_000.0)
    gw = GatewayServer({1: sim})
    await gw.start()
    try:
        async with ModbusPool() as pool:
            dev = template_device(
                "sdm", load_template("eastron_sdm630"), pool.connection(gw.host, gw.port), 1, clock
            )
            assert isinstance(dev, ReadsPowerW)
            assert isinstance(dev, ReadsEnergyWh)
            power = await dev.read_power_w()
            imp = await dev.read_import_energy_wh()
            exp = await dev.read_export_energy_wh()
            volts = await dev.read_channel("voltage_l2_v")
    finally:
        await gw.stop()
    assert power.value == pytest.approx(house.load.power_w(T0), rel=1e-5)
    assert imp.value == pytest.approx(1_234_000.0, rel=1e-6)  # kWh on the wire, Wh here
    assert exp.value == pytest.approx(321_000.0, rel=1e-6)
    assert volts.value == pytest.approx(230.0)


async def test_sunspec_203_template_agrees_with_the_pysunspec2_layout() -> None:
    """The template's fixed addresses read the simulator whose image is laid out from the
    pysunspec2 definitions: a typo in the template would read the wrong register."""
    from sims.modbus.meters import SunSpecMeterSim

    clock = ManualClock(T0)
    house = Household(load=HouseholdLoad(annual_kwh=6000))
    sim = SunSpecMeterSim(clock, house, import_wh=2_000_000.0, export_wh=500_000.0)
    gw = GatewayServer({4: sim})
    await gw.start()
    try:
        async with ModbusPool() as pool:
            tpl = load_template("sunspec_meter_203")
            dev = template_device("m203", tpl, pool.connection(gw.host, gw.port), 4, clock)
            r = {x.channel: x.value for x in await dev.read()}
    finally:
        await gw.stop()
    assert r["power_w"] == round(house.load.power_w(T0))
    assert r["import_energy_wh"] == 2_000_000.0
    assert r["export_energy_wh"] == 500_000.0
    assert r["frequency_hz"] == pytest.approx(50.0)
    assert r["voltage_l3_v"] == pytest.approx(230.0)
    assert r["power_l2_w"] == round(house.load.power_w(T0) / 3)


@pytest.mark.parametrize(
    ("channel_yaml", "message"),
    [
        ("import_energy_wh: {address: 1, unit: kW}", "unit kW cannot become Wh"),
        ("power_w: {address: 1, unit: furlong}", "unknown unit 'furlong'"),
        ("power: {address: 1}", "a channel name ends with its unit"),
    ],
)
def test_units_must_fit_the_channel(tmp_path: Path, channel_yaml: str, message: str) -> None:
    bad = tmp_path / "units.yaml"
    bad.write_text(f"name: m\nchannels:\n  {channel_yaml}\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_template(bad)
    assert info.value.where is not None
    assert info.value.where.startswith("units.yaml")


async def test_sunspec_103_template_reads_the_simulated_inverter() -> None:
    """Fixed addresses of the template against the image laid out from pysunspec2."""
    from sims.modbus.inverter import SunSpecInverterSim

    clock = ManualClock(T0)
    sim = SunSpecInverterSim(clock, rated_w=10_000.0, cloud_seed=None, energy_wh=123_456.0)
    gw = GatewayServer({2: sim})
    await gw.start()
    try:
        async with ModbusPool() as pool:
            tpl = load_template("sunspec_inverter_103")
            dev = template_device("inv", tpl, pool.connection(gw.host, gw.port), 2, clock)
            r = {x.channel: x.value for x in await dev.read()}
    finally:
        await gw.stop()
    assert r["power_w"] == round(sim.power_w)
    assert r["power_w"] > 1000
    assert r["pv_energy_wh"] == 123_456.0
    assert r["frequency_hz"] == pytest.approx(50.0)
    assert r["voltage_l2_v"] == pytest.approx(230.0)
    assert r["operating_state"] == 4.0  # MPPT
