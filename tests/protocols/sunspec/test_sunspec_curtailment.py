"""Curtailment against the simulated inverter: it reverts by itself unless refreshed in time."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.clock import ManualClock
from protocols.modbus.connection import ModbusPool
from protocols.sunspec.curtailment import CurtailmentKeeper
from protocols.sunspec.device import SunSpecInverter, open_sunspec
from sims.modbus.fleet import ModbusFleet
from sims.modbus.inverter import SunSpecInverterSim

NOON = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)  # Karlsruhe, clear sky: far above 30 %


class CountingWriter:
    """Passes limit writes to the inverter and lets the test wait for the n-th one."""

    def __init__(self, inv: SunSpecInverter) -> None:
        self.inv = inv
        self.device_id = inv.device_id
        self.count = 0
        self._cond = asyncio.Condition()

    async def write_limit(self, limit_pct: float, revert_s: int) -> None:
        await self.inv.write_limit(limit_pct, revert_s)
        async with self._cond:
            self.count += 1
            self._cond.notify_all()

    async def clear_power_limit(self, command_id: str) -> None:
        await self.inv.clear_power_limit(command_id)

    async def wait_for(self, n: int, timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s), self._cond:
            await self._cond.wait_for(lambda: self.count >= n)


async def _values(inv: SunSpecInverter) -> dict[str, float | None]:
    return {r.channel: r.value for r in await inv.read()}


async def _setup(
    fleet: ModbusFleet, pool: ModbusPool, clock: ManualClock
) -> tuple[SunSpecInverter, SunSpecInverterSim]:
    sim = fleet.add_inverter("pv", gateway="gw", unit_id=1, rated_w=10_000.0, cloud_seed=None)
    await fleet.start()
    ep = fleet.endpoint("pv")
    inv = await open_sunspec("pv", pool.connection(ep.host, ep.port), ep.unit_id, clock)
    assert isinstance(inv, SunSpecInverter)
    return inv, sim


async def test_limit_is_written_in_order_and_reverts_when_not_refreshed() -> None:
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    async with ModbusPool() as pool:
        inv, sim = await _setup(fleet, pool, clock)
        try:
            before = await _values(inv)
            assert before["power_w"] is not None
            assert before["power_w"] > 5000.0
            sim.write_log.clear()
            await inv.set_power_limit_pct(30.0, 60, "curt-1")
            # percentage, then revert time, then enable
            assert list(sim.write_log) == [
                sim.image.point_address(123, "WMaxLimPct"),
                sim.image.point_address(123, "WMaxLimPct_RvrtTms"),
                sim.image.point_address(123, "WMaxLim_Ena"),
            ]
            limited = await _values(inv)
            assert limited["power_limit_pct"] == pytest.approx(30.0)
            assert limited["power_w"] == pytest.approx(3000.0)
            assert limited["operating_state"] == 5.0  # throttled
            clock.advance(59.0)
            assert (await _values(inv))["power_limit_pct"] == pytest.approx(30.0)
            clock.advance(2.0)
            after = await _values(inv)
        finally:
            await fleet.stop()
    assert after["power_limit_pct"] == 100.0
    assert after["power_w"] is not None
    assert after["power_w"] > 5000.0
    assert sim.reverts == 1


async def test_keeper_refreshes_in_time_and_the_inverter_reverts_once_it_stops() -> None:
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    async with ModbusPool() as pool:
        inv, sim = await _setup(fleet, pool, clock)
        try:
            writer = CountingWriter(inv)
            async with CurtailmentKeeper(writer, clock) as keeper:
                await keeper.set(40.0, 60, "curt-2")
                assert keeper.writes == 1
                for step in range(1, 61):  # 5 minutes in 5 s steps
                    clock.advance(5.0)
                    expected = 1 + (step * 5) // 30  # a refresh every half revert time
                    await writer.wait_for(expected)
                    await asyncio.sleep(0)  # let the keeper book the write
                    assert writer.count == expected
                    assert keeper.writes == expected
                    assert sim.limit.enabled
                during = await _values(inv)
            # the controller is gone: nobody refreshes any more
            clock.advance(61.0)
            after = await _values(inv)
        finally:
            await fleet.stop()
    assert during["power_limit_pct"] == pytest.approx(40.0)
    assert during["power_w"] == pytest.approx(4000.0)
    assert sim.reverts == 1  # only after the keeper stopped
    assert after["power_limit_pct"] == 100.0


async def test_a_repeated_command_id_is_applied_once() -> None:
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    async with ModbusPool() as pool:
        inv, sim = await _setup(fleet, pool, clock)
        try:
            await inv.set_power_limit_pct(50.0, 0, "same")
            first = sim.limit.written_at
            clock.advance(10.0)
            await inv.set_power_limit_pct(50.0, 0, "same")
            assert sim.limit.written_at == first
            await inv.clear_power_limit("clear-1")
            values = await _values(inv)
        finally:
            await fleet.stop()
    assert values["power_limit_pct"] == 100.0


def test_refresh_fraction_cannot_exceed_half() -> None:
    class _Dummy:
        device_id = "x"

        async def write_limit(self, limit_pct: float, revert_s: int) -> None:
            return None

        async def clear_power_limit(self, command_id: str) -> None:
            return None

    with pytest.raises(ValueError, match="refresh_fraction"):
        CurtailmentKeeper(_Dummy(), ManualClock(NOON), refresh_fraction=0.6)


class _RecordingWriter:
    """Records the clock time of every limit write (no network: the keeper's timing only)."""

    def __init__(self, clock: ManualClock) -> None:
        self.device_id = "inv"
        self.clock = clock
        self.times: list[float] = []
        self._cond = asyncio.Condition()

    async def write_limit(self, limit_pct: float, revert_s: int) -> None:
        async with self._cond:
            self.times.append(self.clock.monotonic())
            self._cond.notify_all()

    async def clear_power_limit(self, command_id: str) -> None:
        return None

    async def settle(self, count: int) -> None:
        """Wait until ``count`` writes have happened."""
        async with asyncio.timeout(20), self._cond:
            await self._cond.wait_for(lambda: len(self.times) >= count)


@settings(max_examples=15, deadline=None)
@given(
    revert_s=st.integers(min_value=4, max_value=3600),
    fraction=st.sampled_from([0.5, 0.4, 0.25]),
    steps=st.lists(st.floats(min_value=0.1, max_value=1.0), min_size=5, max_size=40),
)
def test_refreshes_never_leave_more_than_the_fraction_of_the_revert_time(
    revert_s: int, fraction: float, steps: list[float]
) -> None:
    """Whatever the clock does, consecutive writes are at most ``fraction × revert_s`` apart
    (plus the clock step that carried time past the due instant)."""

    period = revert_s * fraction

    async def scenario() -> tuple[list[float], list[float]]:
        clock = ManualClock(NOON)
        writer = _RecordingWriter(clock)
        expected = [0.0]  # replay of the rule: rewrite once the clock reaches last + period
        async with CurtailmentKeeper(writer, clock, refresh_fraction=fraction) as keeper:
            await keeper.set(50.0, revert_s, "c")
            for step in steps:
                clock.advance(step * period)
                if clock.monotonic() >= expected[-1] + period:
                    expected.append(clock.monotonic())
                await writer.settle(len(expected))
            await asyncio.sleep(0.01)  # a surplus write would show up now
        return writer.times, expected

    times, expected = asyncio.run(scenario())
    assert times == pytest.approx(expected)
    largest_step = max(steps) * period
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g <= period + largest_step + 1e-9 for g in gaps)
