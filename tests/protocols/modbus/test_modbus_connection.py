"""The Modbus TCP layer against real pymodbus servers on loopback: sharing, faults, recovery."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from kernel.backoff import Backoff
from kernel.clock import ManualClock, RealClock
from kernel.errors import ConfigError, DeviceProtocolError, DeviceUnavailable
from kernel.readings import Quality
from protocols.modbus.availability import Availability
from protocols.modbus.connection import ModbusConnection, ModbusPool
from protocols.modbus.driver import template_device
from protocols.modbus.template import load_template
from sims.modbus.server import GatewayServer
from sims.modbus.template_sim import TemplateSim


def _meter() -> TemplateSim:
    tpl = load_template("eastron_sdm630")
    values = {channel: 10.0 for channel in tpl.channels}
    values.update(power_w=1500.0, voltage_l1_v=231.0)
    return TemplateSim(tpl, values)


async def test_unit_ids_behind_one_gateway_share_one_connection() -> None:
    gw = GatewayServer({1: _meter(), 2: _meter(), 3: _meter()})
    await gw.start()
    try:
        async with ModbusPool(timeout_s=2.0) as pool:
            clock = RealClock()
            tpl = load_template("eastron_sdm630")
            devs = [
                template_device(f"m{u}", tpl, pool.connection(gw.host, gw.port), u, clock)
                for u in (1, 2, 3)
            ]
            results = await asyncio.gather(*(d.read_power_w() for d in devs))
            conn = pool.connection(gw.host, gw.port)
    finally:
        await gw.stop()
    assert [r.value for r in results] == [1500.0, 1500.0, 1500.0]
    assert len(pool) == 0  # closed by the context manager
    assert conn.connects == 1


async def test_exception_responses_become_protocol_errors() -> None:
    gw = GatewayServer({1: _meter()})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            with pytest.raises(DeviceProtocolError, match="illegal data address"):
                await conn.read(1, "holding", 0, 2, device_id="m1")
            # a unit the gateway does not know: code 11, the device behind it is away
            with pytest.raises(DeviceUnavailable, match="gateway target did not respond"):
                await conn.read(9, "input", 0, 2, device_id="m9")
            assert await conn.read(1, "input", 52, 2, device_id="m1") == [0x44BB, 0x8000]
    finally:
        await gw.stop()


@pytest.mark.slow
async def test_a_silent_device_is_unavailable_alone_and_says_why() -> None:
    tpl = load_template("eastron_sdm630")
    gw_a = GatewayServer({1: _meter()})
    gw_b = GatewayServer({1: _meter()})
    await gw_a.start()
    await gw_b.start()
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    timeout_s = 1.0
    try:
        async with ModbusPool(timeout_s=timeout_s) as pool:
            quiet = template_device("quiet", tpl, pool.connection(gw_a.host, gw_a.port), 1, clock)
            other = template_device("other", tpl, pool.connection(gw_b.host, gw_b.port), 1, clock)
            gw_a.silence(1)

            async def timed_other() -> tuple[list[float | None], float]:
                t0 = time.monotonic()
                vals = [r.value for r in await other.read()]
                return vals, time.monotonic() - t0

            for _ in range(3):  # three polls while it is silent (retried after its backoff)
                quiet_r, (other_v, other_s) = await asyncio.gather(quiet.read(), timed_other())
                assert all(r.quality is Quality.UNAVAILABLE and r.value is None for r in quiet_r)
                assert quiet.unavailable_reason == (
                    f"no answer from {gw_a.host}:{gw_a.port} to read input 0+18 unit 1 "
                    f"within {timeout_s} s"
                )
                assert 1500.0 in other_v
                # the other gateway is not held up by the silent one's timeout
                assert other_s < timeout_s / 2
                clock.advance(120.0)  # past the quiet device's backoff
            gw_a.silence(1, False)
            back = {r.channel: r.value for r in await quiet.read()}
            assert quiet.unavailable_reason is None
            again = await quiet.read()
    finally:
        await gw_a.stop()
        await gw_b.stop()
    assert back["power_w"] == 1500.0
    assert all(r.available for r in again if r.channel in ("power_w", "voltage_l1_v"))


async def test_a_down_device_is_not_asked_again_before_its_backoff() -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    avail = Availability("x", clock, Backoff(initial_s=10.0, cap_s=10.0))
    avail.failed("timeout")
    assert not avail.due()
    clock.advance(4.9)
    assert not avail.due()  # jitter keeps the delay within [5, 10] s
    clock.advance(5.2)
    assert avail.due()


async def test_reconnects_after_the_gateway_comes_back() -> None:
    gw = GatewayServer({1: _meter()})
    await gw.start()
    port = gw.port
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    conn = ModbusConnection(
        gw.host, port, timeout_s=1.0, backoff=Backoff(initial_s=2.0, cap_s=8.0), clock=clock
    )
    try:
        assert await conn.read(1, "input", 52, 2, device_id="m") == [0x44BB, 0x8000]
        await gw.stop()
        await asyncio.sleep(0.2)  # let the client see the socket close
        with pytest.raises(DeviceUnavailable):
            await conn.read(1, "input", 52, 2, device_id="m")
        with pytest.raises(DeviceUnavailable, match="next reconnect in"):
            await conn.read(1, "input", 52, 2, device_id="m")  # backoff: no new attempt yet
        await gw.start()
        assert gw.port == port
        with pytest.raises(DeviceUnavailable, match="next reconnect in"):
            await conn.read(1, "input", 52, 2, device_id="m")  # still waiting out the backoff
        clock.advance(10.0)
        assert await conn.read(1, "input", 52, 2, device_id="m") == [0x44BB, 0x8000]
        assert conn.connects == 2
    finally:
        await conn.close()
        await gw.stop()


async def test_open_device_by_driver_name() -> None:
    from protocols.modbus.factory import open_device
    from protocols.sunspec.device import SunSpecInverter
    from sims.modbus.fleet import ModbusFleet

    clock = ManualClock(datetime(2026, 6, 21, 11, tzinfo=UTC))
    fleet = ModbusFleet(clock)
    fleet.add_household("h", gateway="gw", kwp=6.0, battery_wh=None)
    async with fleet, ModbusPool() as pool:
        pv, meter = fleet.endpoint("h-pv"), fleet.endpoint("h-meter")
        inv = await open_device("h-pv", "sunspec", pv.host, pv.port, pv.unit_id, pool, clock)
        sdm = await open_device(
            "h-m", meter.kind, meter.host, meter.port, meter.unit_id, pool, clock
        )
        with pytest.raises(ConfigError, match="unknown driver 'sdm999'"):
            await open_device("x", "sdm999", meter.host, meter.port, 1, pool, clock)
        readings = await sdm.read()
    assert isinstance(inv, SunSpecInverter)
    assert meter.kind == "eastron_sdm630"
    assert any(r.channel == "import_energy_wh" and r.available for r in readings)
    assert len(pool) == 0
