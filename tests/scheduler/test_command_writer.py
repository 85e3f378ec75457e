"""The one command writer: order per target, supersession by newer decisions, slices with
pacing, and one failing target never stopping the others."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kernel.clock import ManualClock
from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from kernel.errors import DeviceUnavailable
from scheduler.writer import CommandWriter

T0 = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@dataclass
class Lamp:
    """A luminaire node as the writer sees it; ``delay_s`` makes a write take real time."""

    device_id: str
    delay_s: float = 0.0
    levels: list[tuple[float, str]] = field(default_factory=list)

    async def set_dim_level_pct(
        self, level_pct: float, ramp_s: float, command_id: str, expires_at: datetime
    ) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.levels.append((level_pct, command_id))


@dataclass
class Faulty:
    """A driver with a bug: it raises something that is not the project's error."""

    device_id: str = "faulty"

    async def set_battery_power_w(self, power_w: float, revert_s: int, command_id: str) -> None:
        raise ValueError("register value 70000 does not fit 16 bits")

    async def set_load_power_w(self, power_w: float, revert_s: int, command_id: str) -> None:
        raise RuntimeError("driver bug")


@dataclass
class Battery:
    device_id: str = "bat"
    writes: list[float] = field(default_factory=list)

    async def set_battery_power_w(self, power_w: float, revert_s: int, command_id: str) -> None:
        if power_w < -1e6:
            raise DeviceUnavailable(self.device_id, "no answer")
        self.writes.append(power_w)


def dim(cid: str, lamp: str, level: float, decided: datetime) -> Command:
    return Command(
        cid, lamp, CommandKind.DIM_LEVEL_PCT, level, LATER, source="t", decided_at=decided
    )


async def test_an_older_decision_never_undoes_a_newer_one() -> None:
    """A tick decided on the snapshot of 22:00:00 reaches the writer after a presence boost
    decided at 22:00:03: the boost stays, the tick's command for that lamp is superseded."""
    clock = ManualClock(T0)
    lamp = Lamp("l1")
    writer = CommandWriter({"l1": lamp}, clock)
    boost = dim("presence-l1", "l1", 100.0, T0 + timedelta(seconds=3))
    assert [r.status for r in await writer.write([boost])] == [CommandStatus.APPLIED]
    tick = dim("tick-l1", "l1", 30.0, T0)
    [res] = await writer.write([tick])
    assert res.status is CommandStatus.SUPERSEDED
    assert "presence-l1" in res.detail
    assert lamp.levels == [(100.0, "presence-l1")]
    later_tick = dim("tick-l1-b", "l1", 30.0, T0 + timedelta(seconds=60))
    assert [r.status for r in await writer.write([later_tick])] == [CommandStatus.APPLIED]
    assert writer.in_force() == [later_tick]


async def test_concurrent_batches_keep_each_targets_order() -> None:
    """A slow write of lamp l1 is in flight when the fast path submits a newer command for
    l1: it waits for its turn and ends up in force, never overwritten by the older one."""
    clock = ManualClock(T0)
    lamp = Lamp("l1", delay_s=0.05)
    writer = CommandWriter({"l1": lamp}, clock)
    older = dim("a", "l1", 30.0, T0)
    newer = dim("b", "l1", 100.0, T0 + timedelta(seconds=1))
    first = asyncio.create_task(writer.write([older]))
    await asyncio.sleep(0.01)
    second = await writer.write([newer])
    await first
    assert [level for level, _ in lamp.levels] == [30.0, 100.0]
    assert second[0].status is CommandStatus.APPLIED
    assert writer.in_force() == [newer]


async def test_one_faulty_driver_does_not_stop_the_batch() -> None:
    clock = ManualClock(T0)
    faulty, battery = Faulty(), Battery()
    writer = CommandWriter({"faulty": faulty, "bat": battery}, clock)
    res = await writer.write(
        [
            Command("f1", "faulty", CommandKind.BATTERY_POWER_W, 1.0, LATER),
            Command("f2", "faulty", CommandKind.LOAD_POWER_W, 1.0, LATER),
            Command("b1", "bat", CommandKind.BATTERY_POWER_W, 2000.0, LATER),
            Command("b2", "bat", CommandKind.BATTERY_POWER_W, -2e6, LATER),
        ]
    )
    assert [r.status for r in res] == [
        CommandStatus.FAILED,
        CommandStatus.FAILED,
        CommandStatus.APPLIED,
        CommandStatus.FAILED,
    ]
    assert "does not fit 16 bits" in res[0].detail
    assert res[1].detail == "RuntimeError: driver bug"
    assert "no answer" in res[3].detail
    assert battery.writes == [2000.0]


async def test_a_large_batch_goes_out_in_paced_slices_and_the_fast_path_gets_between() -> None:
    clock = ManualClock(T0)
    lamps = {f"l{i}": Lamp(f"l{i}") for i in range(10)}
    order: list[str] = []
    paced = 0

    async def pace() -> None:
        nonlocal paced
        paced += 1
        order.append("pace")
        await asyncio.sleep(0.01)

    writer = CommandWriter(lamps, clock, slice_size=3, pace=pace)
    tick = [dim(f"t{i}", f"l{i}", 50.0, T0) for i in range(10)]
    batch = asyncio.create_task(writer.write(tick))
    await asyncio.sleep(0.005)  # the first slice is out, the writer waits in pace()
    boost = dim("p9", "l9", 100.0, T0 + timedelta(seconds=1))
    [res] = await writer.write([boost])
    order.append("boost")
    results = await batch
    assert paced == 3  # 10 targets in slices of 3: 3 waits between 4 slices
    assert order.index("boost") < len(order) - 1  # sent while the tick was still going out
    assert res.status is CommandStatus.APPLIED
    assert results[9].status is CommandStatus.SUPERSEDED
    assert lamps["l9"].levels == [(100.0, "p9")]
    assert all(lamps[f"l{i}"].levels == [(50.0, f"t{i}")] for i in range(9))


@dataclass
class SlowJournal:
    """A journal whose record takes ``delay_s`` (an fsync on a busy disk)."""

    delay_s: float
    recorded: list[list[str]] = field(default_factory=list)

    async def record(self, results: Sequence[CommandResult]) -> None:
        await asyncio.sleep(self.delay_s)
        self.recorded.append([r.command.command_id for r in results])


async def test_the_fast_path_does_not_wait_for_the_journal_and_loses_no_entry() -> None:
    """A presence corridor is sent without waiting for its journal entries; they are recorded
    behind, in order, and ``settle`` (before the journal stops) waits for them. The cycle's
    batches still wait."""
    clock = ManualClock(T0)
    lamps = {f"l{k}": Lamp(f"l{k}") for k in range(3)}
    journal = SlowJournal(delay_s=0.2)
    writer = CommandWriter(lamps, clock, journal=journal)
    for k in range(3):
        boost = dim(f"presence-l{k}", f"l{k}", 100.0, T0 + timedelta(seconds=k))
        [res] = await writer.write([boost], wait_for_journal=False)
        assert res.status is CommandStatus.APPLIED
    assert [lamp.levels for lamp in lamps.values()] == [
        [(100.0, f"presence-l{k}")] for k in range(3)
    ]
    assert journal.recorded == []  # three corridors sent, no journal entry written yet
    await writer.settle()
    assert journal.recorded == [[f"presence-l{k}"] for k in range(3)]
    await writer.write([dim("tick-l0", "l0", 30.0, T0 + timedelta(seconds=9))])
    assert journal.recorded[-1] == ["tick-l0"]  # the cycle's batch waited for its record
