"""Curtailment against the simulated inverter: it reverts by itself unless refreshed in time."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.clock import ManualClock
from kernel.commands import Command, CommandKind
from protocols.modbus.connection import ModbusPool
from protocols.sunspec.device import SunSpecInverter, open_sunspec
from scheduler.writer import CommandWriter
from sims.modbus.fleet import ModbusFleet
from sims.modbus.inverter import SunSpecInverterSim

NOON = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)  # Karlsruhe, clear sky: far above 30 %


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


def limit(pct: float, revert_s: int, command_id: str) -> Command:
    return Command(
        command_id, "pv", CommandKind.POWER_LIMIT_PCT, pct, NOON + timedelta(days=30),
        "dispatch", revert_s=revert_s,
    )  # fmt: skip


async def test_the_writer_refreshes_in_time_and_the_inverter_reverts_once_it_stops() -> None:
    """The one refresh rule (scheduler.writer): a cycle every 5 s rewrites the limit once
    half its revert time has passed, under its own id; when the cycles stop, the inverter
    drops the limit by itself after the revert time (F2)."""
    clock = ManualClock(NOON)
    fleet = ModbusFleet(clock)
    async with ModbusPool() as pool:
        inv, sim = await _setup(fleet, pool, clock)
        try:
            writer = CommandWriter({"pv": inv}, clock)
            await writer.write([limit(40.0, 60, "curt-2")])
            writes = [sim.limit.written_at]
            for _ in range(60):  # 5 minutes of cycles, 5 s apart
                clock.advance(5.0)
                await writer.write([])
                if sim.limit.written_at != writes[-1]:
                    writes.append(sim.limit.written_at)
                assert sim.limit.enabled
            during = await _values(inv)
            clock.advance(61.0)  # the controller is gone: nobody refreshes any more
            after = await _values(inv)
        finally:
            await fleet.stop()
    assert len(writes) == 1 + 300 // 30  # the first write and a refresh every 30 s
    assert during["power_limit_pct"] == pytest.approx(40.0)
    assert during["power_w"] == pytest.approx(4000.0)
    assert sim.reverts == 1  # only after the cycles stopped
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


class _RecordingInverter:
    """Records the clock time of every limit write (no network: the writer's timing only)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.times: list[float] = []

    async def set_power_limit_pct(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        self.times.append(self.clock.monotonic())

    async def clear_power_limit(self, command_id: str) -> None:
        return None


@settings(max_examples=25, deadline=None)
@given(
    revert_s=st.integers(min_value=4, max_value=3600),
    steps=st.lists(st.floats(min_value=0.05, max_value=0.45), min_size=5, max_size=40),
)
def test_refreshes_never_leave_more_than_half_the_revert_time_plus_one_cycle(
    revert_s: int, steps: list[float]
) -> None:
    """Whatever the cycle interval (below half the revert time, as the service requires),
    consecutive writes are at most half the revert time plus one cycle apart, so the device
    never reverts while the controller lives."""

    async def scenario() -> list[float]:
        clock = ManualClock(NOON)
        inv = _RecordingInverter(clock)
        writer = CommandWriter({"pv": inv}, clock)
        await writer.write([limit(50.0, revert_s, "c")])
        for step in steps:
            clock.advance(step * revert_s)
            await writer.write([])
        return inv.times

    times = asyncio.run(scenario())
    longest_cycle = max(steps) * revert_s
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap <= revert_s / 2 + longest_cycle + 1e-9 for gap in gaps)
    assert all(gap < revert_s for gap in gaps)
    assert len(times) >= 1 + int(sum(steps) * revert_s // (revert_s / 2 + longest_cycle))
