"""Reading per gateway connection against real pymodbus gateways: a silent unit costs only
its own time, and the healthy units behind the same gateway are read in every cycle."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from kernel.clock import ManualClock
from kernel.errors import DeviceUnavailable
from kernel.readings import Reading
from protocols.capabilities import Device
from protocols.modbus.connection import ModbusPool
from protocols.modbus.driver import template_device
from protocols.modbus.template import load_template
from scheduler.reading import Availability, Gateway, read_gateways
from sims.modbus.server import GatewayServer
from sims.modbus.template_sim import TemplateSim

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _meter(power_w: float) -> TemplateSim:
    tpl = load_template("eastron_sdm630")
    values = {channel: 10.0 for channel in tpl.channels}
    values.update(power_w=power_w)
    return TemplateSim(tpl, values)


@pytest.mark.slow
async def test_two_silent_units_do_not_make_the_six_healthy_ones_unavailable() -> None:
    """8 meters behind one gateway, units 3 and 6 silent (no answer at all): in 20 of 20
    cycles the other six are read with their values; the silent ones are unavailable with
    the reason, retried after their backoff."""
    gw = GatewayServer({u: _meter(100.0 * u) for u in range(1, 9)})
    await gw.start()
    gw.silence(3)
    gw.silence(6)
    clock = ManualClock(T0)
    tpl = load_template("eastron_sdm630")
    healthy = {f"m{u}" for u in range(1, 9)} - {"m3", "m6"}
    read_ok: dict[str, int] = dict.fromkeys(healthy, 0)
    try:
        async with ModbusPool(timeout_s=0.3, clock=clock) as pool:
            conn = pool.connection(gw.host, gw.port)
            devices: list[Device] = [
                template_device(f"m{u}", tpl, conn, u, clock) for u in range(1, 9)
            ]
            gateways = [Gateway(conn.name, devices)]
            for _ in range(20):
                # a budget per device well above one request's timeout, as in a site file
                result = await read_gateways(gateways, timeout_s=2.0)
                assert result.unavailable == {"m3", "m6"}
                assert "no answer" in result.errors["m3"]
                values = {r.device_id: r.value for r in result.readings if r.channel == "power_w"}
                for dev in healthy:
                    if values.get(dev) == 100.0 * int(dev[1:]):
                        read_ok[dev] += 1
                clock.advance(60.0)  # one poll interval
    finally:
        await gw.stop()
    assert read_ok == dict.fromkeys(healthy, 20)


async def test_every_device_of_two_real_gateways_is_read_a_silent_one_unavailable() -> None:
    tpl = load_template("eastron_sdm630")
    gw_a = GatewayServer({1: _meter(1500.0), 2: _meter(1500.0)})
    gw_b = GatewayServer({1: _meter(1500.0), 2: _meter(1500.0), 3: _meter(1500.0)})
    await gw_a.start()
    await gw_b.start()
    clock = ManualClock(T0)
    try:
        async with ModbusPool(timeout_s=1.0) as pool:
            gateways = []
            for name, gw, units in (("a", gw_a, (1, 2)), ("b", gw_b, (1, 2, 3))):
                conn = pool.connection(gw.host, gw.port)
                devs: list[Device] = [
                    template_device(f"{name}{u}", tpl, conn, u, clock) for u in units
                ]
                gateways.append(Gateway(conn.name, devs))
            gw_a.silence(2)
            result = await read_gateways(gateways, timeout_s=5.0)
    finally:
        await gw_a.stop()
        await gw_b.stop()
    assert result.unavailable == {"a2"}
    power = {r.device_id: r for r in result.readings if r.channel == "power_w"}
    assert sorted(power) == ["a1", "a2", "b1", "b2", "b3"]
    assert not power["a2"].available
    assert all(power[d].value == 1500.0 for d in ("a1", "b1", "b2", "b3"))


class _Hangs:
    device_id = "hangs"

    async def read(self) -> list[Reading]:
        await asyncio.sleep(3600)
        return []


class _Refuses:
    device_id = "refuses"

    async def read(self) -> list[Reading]:
        raise DeviceUnavailable(self.device_id, "connection refused")


class _Answers:
    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    async def read(self) -> list[Reading]:
        return [Reading(self.device_id, "power_w", 1.0, "W", T0)]


async def test_a_device_budget_starts_at_its_turn_not_before() -> None:
    """Behind one gateway a hanging device uses up its own budget; the device after it gets a
    full budget of its own and is read."""
    gw = Gateway("gw", [_Hangs(), _Answers("after")])
    result = await read_gateways([gw], timeout_s=0.2)
    assert result.unavailable == {"hangs"}
    assert result.errors["hangs"] == "timeout after 0.2 s"
    assert [r.device_id for r in result.readings] == ["after"]


async def test_gateways_are_read_in_parallel() -> None:
    slow = Gateway("a", [_Hangs()])
    fast = Gateway("b", [_Refuses(), _Answers("ok")])
    result = await read_gateways([slow, fast], timeout_s=0.2)
    assert result.unavailable == {"hangs", "refuses"}
    assert "connection refused" in result.errors["refuses"]
    assert [r.device_id for r in result.readings] == ["ok"]


def test_a_device_going_down_and_back_is_logged_once_each_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    avail = Availability()
    with caplog.at_level(logging.INFO, logger="scheduler.reading"):
        for _ in range(3):
            avail.update({"m1"}, {"m1": "timeout after 2 s"})
        assert avail.down == {"m1": "timeout after 2 s"}
        for _ in range(3):
            avail.update(set(), {})
    assert [r.getMessage() for r in caplog.records] == [
        "device m1 unavailable: timeout after 2 s",
        "device m1 available again",
    ]
