"""The simulated gateway on pymodbus's public server API: unit ids behind one port, fresh values
on every read, writes that reach the unit (or are refused), silent units, a reboot."""

from __future__ import annotations

import pytest

from kernel.errors import DeviceProtocolError, DeviceUnavailable
from protocols.modbus.connection import ModbusConnection
from sims.modbus.server import GatewayServer, SimUnit


class Counter(SimUnit):
    """Input 0 counts the refreshes; holding 100..101 is writable, 102 is not; a second input
    bank at 30 answers too."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs = self.add_bank("input", 0, [0, 0])
        self.add_bank("input", 30, [7, 8])
        self.holding = self.add_bank("holding", 100, [0, 0, 0])
        self.writable = {100, 101}
        self.writes: list[tuple[int, list[int]]] = []

    def refresh(self) -> None:
        self.inputs.regs[0] += 1

    def on_write(self, address: int, values: list[int]) -> None:
        self.writes.append((address, values))
        self.inputs.regs[1] = sum(self.holding.regs)


async def test_reads_are_refreshed_and_writes_reach_the_unit() -> None:
    unit = Counter()
    gw = GatewayServer({5: unit})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            first = await conn.read(5, "input", 0, 2, device_id="c")
            second = await conn.read(5, "input", 0, 1, device_id="c")
            assert await conn.read(5, "input", 30, 2, device_id="c") == [7, 8]
            await conn.write(5, 100, [3, 4], device_id="c")
            assert await conn.read(5, "holding", 100, 2, device_id="c") == [3, 4]
            after = await conn.read(5, "input", 0, 2, device_id="c")
            with pytest.raises(DeviceProtocolError, match="illegal data address"):
                await conn.write(5, 101, [1, 1], device_id="c")  # 102 is not writable
            with pytest.raises(DeviceProtocolError, match="illegal data address"):
                await conn.read(5, "input", 1, 2, device_id="c")  # runs past the bank
    finally:
        await gw.stop()
    assert first == [1, 0]
    assert second == [2]
    assert after[1] == 7  # the unit reacted to the write
    assert unit.writes == [(100, [3, 4])]
    assert unit.holding.regs == [3, 4, 0]  # the refused write stored nothing


async def test_a_silent_unit_says_nothing_its_neighbours_answer_and_it_comes_back() -> None:
    gw = GatewayServer({1: Counter(), 2: Counter()})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=0.5) as conn:
            gw.silence(1)
            with pytest.raises(DeviceUnavailable, match="unit 1"):
                await conn.read(1, "input", 30, 2, device_id="c1")
            assert await conn.read(2, "input", 30, 2, device_id="c2") == [7, 8]
            gw.silence(1, False)
            assert await conn.read(1, "input", 30, 2, device_id="c1") == [7, 8]
    finally:
        await gw.stop()


async def test_the_gateway_reboots_on_the_same_port_with_its_units() -> None:
    unit = Counter()
    gw = GatewayServer({1: unit})
    await gw.start()
    port = gw.port
    try:
        await gw.stop()
        assert not gw.running
        await gw.start()
        assert gw.port == port
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            assert await conn.read(1, "input", 30, 2, device_id="c") == [7, 8]
    finally:
        await gw.stop()
