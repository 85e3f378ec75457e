"""Discovery of the model chain at 40000, 0 and 50000; mapping to canonical readings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from kernel.clock import ManualClock
from kernel.errors import DeviceProtocolError
from kernel.readings import Quality
from protocols.capabilities import AcceptsPowerLimitPct, ReadsEnergyWh, ReadsPowerW
from protocols.sunspec.device import SunSpecInverter, SunSpecMeter, open_sunspec
from protocols.sunspec.discovery import discover
from sims.modbus.server import GatewayServer, SimUnit

if TYPE_CHECKING:
    from conftest import Serve

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("base", [40000, 0, 50000])
async def test_discovers_the_chain_at_each_base(base: int, serve_image: Serve) -> None:
    chain = [(1, {"Mn": "X"}), (103, {}), (120, {}), (123, {})]
    async with serve_image(chain, base=base) as (_image, conn):
        smap = await discover(conn, 1, device_id="inv")
    assert smap.base == base
    assert smap.ids == (1, 103, 120, 123)
    assert [m.address for m in smap.models] == [base + 2, base + 70, base + 122, base + 150]
    assert [m.length for m in smap.models] == [66, 50, 26, 24]


async def test_a_device_without_marker_is_a_protocol_error() -> None:
    unit = SimUnit()
    unit.add_bank("holding", 40000, [1, 2, 3, 4])
    gw = GatewayServer({1: unit})
    await gw.start()
    try:
        from protocols.modbus.connection import ModbusConnection

        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            with pytest.raises(DeviceProtocolError, match="no SunSpec marker"):
                await discover(conn, 1, device_id="box")
    finally:
        await gw.stop()


async def test_inverter_maps_to_canonical_readings(serve_image: Serve) -> None:
    chain = [
        (1, {"Mn": "X"}),
        (103, {"W": 4321, "W_SF": 0, "WH": 987654, "WH_SF": 0, "Hz": 5001, "Hz_SF": -2,
               "PhVphA": 2305, "V_SF": -1, "St": 4}),
        (120, {"WRtg": 10000, "WRtg_SF": 0}),
        (123, {"WMaxLimPct": 600, "WMaxLimPct_SF": -1, "WMaxLim_Ena": 1}),
    ]  # fmt: skip
    clock = ManualClock(T0)
    async with serve_image(chain) as (_image, conn):
        dev = await open_sunspec("inv-7", conn, 1, clock)
        readings = {r.channel: r for r in await dev.read()}
    assert isinstance(dev, SunSpecInverter)
    assert isinstance(dev, ReadsPowerW)
    assert isinstance(dev, AcceptsPowerLimitPct)
    assert readings["power_w"].value == 4321.0
    assert readings["pv_energy_wh"].value == 987654.0
    assert readings["frequency_hz"].value == pytest.approx(50.01)
    assert readings["voltage_l1_v"].value == pytest.approx(230.5)
    assert readings["operating_state"].value == 4.0
    assert readings["power_limit_pct"].value == pytest.approx(60.0)
    assert readings["rated_power_w"].value == 10000.0
    assert readings["voltage_l2_v"].quality is Quality.UNAVAILABLE  # not implemented
    assert all(r.device_id == "inv-7" and r.ts == T0 for r in readings.values())


async def test_meter_maps_to_canonical_readings(serve_image: Serve) -> None:
    chain = [
        (1, {"Mn": "M"}),
        (203, {"W": -2500, "W_SF": 0, "TotWhImp": 120000, "TotWhExp": 4500, "TotWh_SF": 1}),
    ]
    async with serve_image(chain) as (_image, conn):
        dev = await open_sunspec("meter-1", conn, 1, ManualClock(T0))
        assert isinstance(dev, SunSpecMeter)
        assert isinstance(dev, ReadsEnergyWh)
        power = await dev.read_power_w()
        imp = await dev.read_import_energy_wh()
        exp = await dev.read_export_energy_wh()
    assert power.value == -2500.0  # exporting
    assert imp.value == 1_200_000.0
    assert exp.value == 45_000.0


async def test_float_inverter_model_113_maps_like_103(serve_image: Serve) -> None:
    chain = [(1, {"Mn": "F"}), (113, {"W": 2500.5, "WH": 12345.0, "Hz": 49.98, "St": 4})]
    async with serve_image(chain) as (_image, conn):
        dev = await open_sunspec("inv-f", conn, 1, ManualClock(T0))
        r = {x.channel: x for x in await dev.read()}
    assert isinstance(dev, SunSpecInverter)
    assert not dev.accepts_power_limit  # no 123/704 in the chain
    assert r["power_w"].value == pytest.approx(2500.5)
    assert r["pv_energy_wh"].value == pytest.approx(12345.0)
    assert r["frequency_hz"].value == pytest.approx(49.98, abs=1e-4)
    assert r["voltage_l1_v"].quality is Quality.UNAVAILABLE  # NaN: not implemented


async def test_limit_through_model_704_is_written_in_order() -> None:
    from protocols.modbus.connection import ModbusConnection
    from protocols.sunspec.models import model_def
    from sims.modbus.sunspec_image import SunSpecImage, SunSpecImageUnit

    image = SunSpecImage(
        40000,
        [
            (1, {"Mn": "DER"}),
            (701, {"W": 5000, "W_SF": 0, "InvSt": 4}),
            (704, {"WMaxLimPct": 1000, "WMaxLimPct_SF": -1, "WMaxLimPctEna": 0}),
        ],
    )
    names = ("WMaxLimPct", "WMaxLimPctRvrtTms", "WMaxLimPctEna")
    m704 = model_def(704)
    writable = {image.point_address(704, n) + i for n in names for i in range(m704.point(n).size)}
    unit = SunSpecImageUnit(image, writable)
    gw = GatewayServer({1: unit})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            inv = await open_sunspec("der", conn, 1, ManualClock(T0))
            assert isinstance(inv, SunSpecInverter)
            await inv.set_power_limit_pct(37.5, 900, "c-704")
            r = {x.channel: x.value for x in await inv.read()}
    finally:
        await gw.stop()
    assert list(unit.write_log) == [image.point_address(704, n) for n in names]
    assert image.get_regs(704, "WMaxLimPct") == [375]
    assert image.get_regs(704, "WMaxLimPctRvrtTms") == [0, 900]  # uint32, high word first
    assert r["power_limit_pct"] == pytest.approx(37.5)
    assert r["power_w"] == 5000.0
