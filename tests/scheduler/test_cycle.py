"""The read → decide → write cycle, cycle by cycle with an injected clock (OpenEMS style).

The devices here are in-memory fakes of the capability protocols; the same cycle runs against
the pymodbus and MQTT simulators in the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from kernel.clock import ManualClock
from kernel.commands import Command, CommandKind, CommandStatus
from kernel.errors import DeviceUnavailable
from kernel.readings import Reading
from protocols.capabilities import AcceptsPowerLimitPct, Device
from scheduler.cycle import Cycle
from scheduler.reading import Gateway
from scheduler.snapshot import Snapshot
from scheduler.writer import CommandWriter

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


@dataclass
class FakeInverter:
    device_id: str
    clock: ManualClock
    power_w: float = 5000.0
    hang: bool = False
    fail: bool = False
    writes: list[tuple[float, int, str]] = field(default_factory=list)

    async def read(self) -> Sequence[Reading]:
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail:
            raise DeviceUnavailable(self.device_id, "connection refused")
        return [Reading(self.device_id, "power_w", self.power_w, "W", self.clock.now())]

    async def set_power_limit_pct(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        self.writes.append((limit_pct, revert_s, command_id))

    async def clear_power_limit(self, command_id: str) -> None:
        self.writes.append((100.0, 0, command_id))


@dataclass
class Curtail:
    """Curtail every inverter above 4 kW to 60 %."""

    name: str = "curtail"

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        out = []
        for dev in sorted(snapshot.readings):
            p = snapshot.value(dev, "power_w")
            if p is not None and p > 4000:
                out.append(
                    Command(
                        f"cut-{dev}-{snapshot.at:%H%M}",
                        dev,
                        CommandKind.POWER_LIMIT_PCT,
                        60.0,
                        snapshot.at + timedelta(minutes=15),
                        "curtail",
                        revert_s=600,
                    )
                )
        return out


class Broken:
    name = "broken"

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        raise ZeroDivisionError("bad plan")


def make(clock: ManualClock, *devs: FakeInverter) -> tuple[Cycle, CommandWriter]:
    """Each fake on a gateway of its own."""
    writer = CommandWriter({d.device_id: d for d in devs}, clock)
    gateways = [Gateway(d.device_id, [d]) for d in devs]
    cycle = Cycle(
        clock, writer, [Broken(), Curtail()], gateways=lambda: gateways, read_timeout_s=0.3
    )
    return cycle, writer


def test_fakes_implement_the_capabilities() -> None:
    inv = FakeInverter("inv-1", ManualClock(T0))
    assert isinstance(inv, Device)
    assert isinstance(inv, AcceptsPowerLimitPct)


async def test_a_hanging_and_a_failing_device_are_unavailable_and_others_are_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(T0)
    ok, slow, dead = (
        FakeInverter("ok", clock),
        FakeInverter("slow", clock, hang=True),
        FakeInverter("dead", clock, fail=True),
    )
    cycle, _ = make(clock, ok, slow, dead)
    with caplog.at_level(logging.INFO, logger="scheduler.reading"):
        report = await cycle.run_once()
        await cycle.run_once()  # still down: no second log line
    snap = report.snapshot
    assert snap.unavailable == {"slow", "dead"}
    assert snap.value("ok", "power_w") == 5000.0
    assert snap.value("slow", "power_w") is None  # not zero, not stale
    assert "timeout" in snap.errors["slow"]
    assert "connection refused" in snap.errors["dead"]
    down_lines = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(down_lines) == 2
    # the healthy inverter is still curtailed although a decider before it raised
    assert report.decider_errors == {"broken": "ZeroDivisionError: bad plan"}
    assert ok.writes == [(60.0, 600, "cut-ok-1000")]
    slow.hang = False
    dead.fail = False
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="scheduler.reading"):
        report = await cycle.run_once()
    assert report.snapshot.unavailable == frozenset()
    assert sorted(r.getMessage() for r in caplog.records if "again" in r.getMessage()) == [
        "device dead available again",
        "device slow available again",
    ]


async def test_duplicates_are_applied_once_and_expired_commands_never() -> None:
    clock = ManualClock(T0)
    inv = FakeInverter("inv", clock)
    writer = CommandWriter({"inv": inv}, clock)
    cmd = Command("c1", "inv", CommandKind.POWER_LIMIT_PCT, 50, T0 + timedelta(minutes=5))
    stale = Command("c0", "inv", CommandKind.POWER_LIMIT_PCT, 10, T0 - timedelta(seconds=1))
    res = await writer.write([cmd, cmd, stale])
    assert [r.status for r in res] == [
        CommandStatus.DUPLICATE,
        CommandStatus.EXPIRED,
        CommandStatus.APPLIED,
    ]
    res = await writer.write([cmd])
    assert [r.status for r in res] == [CommandStatus.DUPLICATE]
    assert inv.writes == [(50, 0, "c1")]


async def test_setpoints_with_a_revert_time_are_refreshed_at_half_of_it() -> None:
    clock = ManualClock(T0)
    inv = FakeInverter("inv", clock)
    writer = CommandWriter({"inv": inv}, clock)
    cmd = Command(
        "lim", "inv", CommandKind.POWER_LIMIT_PCT, 40, T0 + timedelta(minutes=15), revert_s=300
    )
    await writer.write([cmd])
    clock.advance(149)
    await writer.write([])
    assert len(inv.writes) == 1  # not yet half of the revert time
    clock.advance(1)
    await writer.write([])
    assert len(inv.writes) == 2  # refreshed under the same id
    assert inv.writes[-1] == (40, 300, "lim")
    clock.advance(16 * 60)
    await writer.write([])
    assert len(inv.writes) == 2  # expired: no more refreshes, the device reverts by itself
    assert writer.in_force() == []


async def test_unknown_target_and_unsupported_kind_are_reported() -> None:
    clock = ManualClock(T0)
    inv = FakeInverter("inv", clock)
    writer = CommandWriter({"inv": inv}, clock)
    exp = T0 + timedelta(minutes=1)
    res = await writer.write(
        [
            Command("a", "nobody", CommandKind.POWER_LIMIT_PCT, 1, exp),
            Command("b", "inv", CommandKind.DIM_LEVEL_PCT, 30, exp),
        ]
    )
    assert [r.status for r in res] == [CommandStatus.FAILED, CommandStatus.UNSUPPORTED]
    assert "nobody" in res[0].detail
