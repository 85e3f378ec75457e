"""Writes to the control model (123/704) with as few requests as are safe.

A limit write uses the scale factor from the last poll or one read, and reads it again once it
may have changed: after a failed poll (device away or restarted) and after a failed write.
A 100 % limit switches the limit off (one write), or writes nothing when the limit is known
to be off. The device is a real Modbus server whose image the test changes behind the
driver's back, so a stale belief shows as a wrong register."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from kernel.clock import ManualClock
from kernel.errors import DeviceProtocolError
from protocols.modbus.connection import ModbusConnection
from protocols.sunspec.device import SunSpecInverter, open_sunspec
from sims.modbus.server import GatewayServer
from sims.modbus.sunspec_image import Raw, SunSpecImage, SunSpecImageUnit

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)

CONTROL_POINTS = {
    123: ("WMaxLimPct", "WMaxLimPct_RvrtTms", "WMaxLim_Ena"),
    704: ("WMaxLimPct", "WMaxLimPctRvrtTms", "WMaxLimPctEna"),
}


@dataclass
class Rig:
    inv: SunSpecInverter
    image: SunSpecImage
    unit: SunSpecImageUnit
    gateway: GatewayServer
    control: int

    def raw_pct(self) -> int:
        return self.image.get_regs(self.control, "WMaxLimPct")[0]

    def set_sf(self, sf: int) -> None:
        """The device's scale factor changes (a firmware update, another device)."""
        self.image.set(self.control, "WMaxLimPct_SF", sf)

    def reads(self) -> int:
        return len(self.unit.read_log)

    def enabled(self) -> int:
        return self.image.get_regs(self.control, CONTROL_POINTS[self.control][2])[0]

    def writes(self) -> list[int]:
        return list(self.unit.write_log)


@asynccontextmanager
async def rig(control: int = 123, sf: int = -1) -> AsyncIterator[Rig]:
    chain: Sequence[tuple[int, Mapping[str, Raw]]] = [
        (1, {"Mn": "X"}),
        (103, {"W": 4000, "W_SF": 0}),
        (control, {"WMaxLimPct": 1000, "WMaxLimPct_SF": sf, CONTROL_POINTS[control][2]: 0}),
    ]
    image = SunSpecImage(40000, chain)
    unit = SunSpecImageUnit(image, set(range(40000, 40000 + len(image.registers))))
    gw = GatewayServer({1: unit})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=0.3) as conn:
            inv = await open_sunspec("inv-1", conn, 1, ManualClock(T0))
            assert isinstance(inv, SunSpecInverter)
            yield Rig(inv, image, unit, gw, control)
    finally:
        await gw.stop()


@pytest.mark.parametrize("control", [123, 704])
async def test_the_scale_factor_is_read_once_then_kept(control: int) -> None:
    async with rig(control, sf=-1) as r:
        assert r.inv.limit_sf is None  # discovery decodes no control points
        before = r.reads()
        await r.inv.write_limit(30.0, 60)
        assert r.reads() == before + 1  # the control model, once
        assert r.raw_pct() == 300
        assert r.inv.limit_sf == -1
        r.set_sf(-2)  # behind the driver's back: it does not look again
        await r.inv.write_limit(40.0, 60)
        assert r.reads() == before + 1
        assert r.raw_pct() == 400  # scaled with the kept -1
        names = CONTROL_POINTS[control]
        assert list(r.unit.write_log)[-3:] == [r.image.point_address(control, n) for n in names]


async def test_a_poll_brings_the_scale_factor_up_to_date_without_a_read_of_its_own() -> None:
    async with rig(sf=-1) as r:
        await r.inv.read()
        assert r.inv.limit_sf == -1
        r.set_sf(-2)
        await r.inv.read()
        assert r.inv.limit_sf == -2
        polled = r.reads()
        await r.inv.write_limit(40.0, 60)
        assert r.reads() == polled  # the write read nothing
        assert r.raw_pct() == 4000


async def test_a_failed_poll_forgets_the_scale_factor_so_a_restarted_device_is_asked() -> None:
    async with rig(sf=-1) as r:
        await r.inv.write_limit(30.0, 60)
        assert r.inv.limit_sf == -1
        r.gateway.silence(1)
        readings = await r.inv.read()
        assert all(not x.available for x in readings)
        assert r.inv.limit_sf is None
        r.set_sf(-2)  # it comes back with another firmware
        r.gateway.silence(1, False)
        before = r.reads()
        await r.inv.write_limit(50.0, 60)  # before any poll has seen it again
        assert r.reads() == before + 1
        assert r.raw_pct() == 5000
        assert r.inv.limit_sf == -2


async def test_a_failed_write_forgets_the_scale_factor() -> None:
    async with rig(sf=-1) as r:
        await r.inv.write_limit(30.0, 60)
        revert = r.image.point_address(123, "WMaxLimPct_RvrtTms")
        r.unit.writable.discard(revert)
        with pytest.raises(DeviceProtocolError) as err:
            await r.inv.write_limit(20.0, 60)
        assert err.value.device_id == "inv-1"
        assert r.inv.limit_sf is None
        r.unit.writable.add(revert)
        r.set_sf(0)
        await r.inv.write_limit(20.0, 60)
        assert r.raw_pct() == 20
        assert r.inv.limit_sf == 0


async def test_a_scale_factor_not_implemented_is_refused_and_not_kept() -> None:
    async with rig(sf=-1) as r:
        r.image.set(123, "WMaxLimPct_SF", None)  # 0x8000: not implemented
        with pytest.raises(DeviceProtocolError, match="WMaxLimPct_SF not implemented"):
            await r.inv.write_limit(30.0, 60)
        assert r.inv.limit_sf is None
        assert r.raw_pct() == 1000  # nothing written


@pytest.mark.parametrize("control", [123, 704])
async def test_100_pct_switches_the_limit_off_once(control: int) -> None:
    async with rig(control) as r:
        enable = r.image.point_address(control, CONTROL_POINTS[control][2])
        await r.inv.set_power_limit_pct(30.0, 900, "q1")
        assert r.enabled() == 1
        r.unit.write_log.clear()
        await r.inv.set_power_limit_pct(100.0, 900, "q2")
        assert r.writes() == [enable]
        assert r.enabled() == 0
        assert r.inv.limit_off
        await r.inv.read()
        r.inv.clock.advance(450.0)  # type: ignore[attr-defined]
        await r.inv.set_power_limit_pct(100.0, 900, "q2")  # the refresh: nothing can lapse
        await r.inv.set_power_limit_pct(100.0, 900, "q3")  # the next quarter-hour's 100 %
        await r.inv.clear_power_limit("clear")
        assert r.writes() == [enable]


async def test_a_limit_a_poll_sees_on_is_switched_off() -> None:
    async with rig() as r:
        await r.inv.set_power_limit_pct(100.0, 900, "q1")
        assert r.enabled() == 0
        # the device comes back with a limit of its own (a restart with a stored setting)
        r.image.set(123, "WMaxLim_Ena", 1)
        await r.inv.read()
        assert not r.inv.limit_off
        await r.inv.set_power_limit_pct(100.0, 900, "q2")
        assert r.enabled() == 0


async def test_a_fresh_driver_does_not_assume_the_limit_is_off() -> None:
    async with rig() as r:  # the image starts with the limit on: nobody has polled
        r.image.set(123, "WMaxLim_Ena", 1)
        assert not r.inv.limit_off
        await r.inv.set_power_limit_pct(100.0, 900, "q1")
        assert r.enabled() == 0


async def test_a_limit_written_after_the_poll_is_switched_off_by_100_pct() -> None:
    async with rig() as r:
        await r.inv.read()  # sees the limit off
        assert r.inv.limit_off
        await r.inv.set_power_limit_pct(30.0, 900, "q1")
        assert not r.inv.limit_off
        await r.inv.set_power_limit_pct(100.0, 900, "q2")
        assert r.enabled() == 0


async def test_a_failed_poll_forgets_that_the_limit_was_off() -> None:
    async with rig() as r:
        await r.inv.read()
        assert r.inv.limit_off
        r.gateway.silence(1)
        await r.inv.read()
        r.gateway.silence(1, False)
        assert not r.inv.limit_off
        r.image.set(123, "WMaxLim_Ena", 1)  # restarted with a limit on
        await r.inv.set_power_limit_pct(100.0, 900, "q1")
        assert r.enabled() == 0
