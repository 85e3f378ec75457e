"""F3: after a restart the setpoints in force are re-applied once, under the same ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kernel.clock import ManualClock
from kernel.commands import Command, CommandKind, CommandStatus
from scheduler.journal import StoreJournal
from scheduler.recovery import reapply_live
from scheduler.writer import CommandWriter
from store import Store

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@dataclass
class Inverter:
    device_id: str
    writes: list[tuple[float, int, str]] = field(default_factory=list)

    async def read(self) -> Sequence[object]:
        return []

    async def set_power_limit_pct(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        self.writes.append((limit_pct, revert_s, command_id))

    async def clear_power_limit(self, command_id: str) -> None:
        self.writes.append((100.0, 0, command_id))


def limit(cid: str, target: str, pct: float, minutes: int) -> Command:
    return Command(cid, target, CommandKind.POWER_LIMIT_PCT, pct, T0 + timedelta(minutes=minutes),
                   "dispatch", revert_s=600)  # fmt: skip


async def test_restart_reapplies_live_setpoints_once_under_the_same_ids(store_url: str) -> None:
    clock = ManualClock(T0)
    inv_a, inv_b = Inverter("inv-a"), Inverter("inv-b")
    devices: dict[str, object] = {"inv-a": inv_a, "inv-b": inv_b}
    async with Store(store_url) as store:
        writer = CommandWriter(devices, clock, journal=StoreJournal(store, clock.now))
        res = await writer.write([limit("q1-a", "inv-a", 40, 15), limit("q1-b", "inv-b", 70, 5)])
        assert {r.status for r in res} == {CommandStatus.APPLIED}
    # the controller dies; 7 minutes later it restarts: q1-b has expired, q1-a is in force
    clock.advance(7 * 60)
    async with Store(store_url) as store:
        fresh = CommandWriter(devices, clock, journal=StoreJournal(store, clock.now))
        res = await reapply_live(store, fresh, clock.now())
        assert [(r.command.command_id, r.status) for r in res] == [("q1-a", CommandStatus.APPLIED)]
        assert inv_a.writes == [(40, 600, "q1-a"), (40, 600, "q1-a")]
        assert inv_b.writes == [(70, 600, "q1-b")]  # expired: not re-applied
        # the dispatch decider re-issues its current command after the restart: a duplicate
        res = await fresh.write([limit("q1-a", "inv-a", 40, 15)])
        assert [r.status for r in res] == [CommandStatus.DUPLICATE]
        assert len(inv_a.writes) == 2
        assert (await store.commands.get("q1-b")).status == "expired"  # type: ignore[union-attr]
        stored = await store.commands.get("q1-a")
        assert stored is not None
        assert stored.status == "sent"
        assert stored.command.value["revert_s"] == 600
        # a second restart in the same minute re-applies it again (each restart once)
        again = await reapply_live(store, CommandWriter(devices, clock), clock.now())
        assert [r.command.command_id for r in again] == ["q1-a"]


@dataclass
class Node:
    device_id: str
    levels: list[tuple[float, str]] = field(default_factory=list)

    async def set_dim_level_pct(
        self, level_pct: float, ramp_s: float, command_id: str, expires_at: datetime
    ) -> None:
        self.levels.append((level_pct, command_id))


async def test_restart_reapplies_only_the_newest_command_per_target_and_kind(
    store_url: str,
) -> None:
    """Lighting levels are journaled like setpoints: after a restart the level in force of
    each luminaire comes back once under its id (with its reason and decision instant); the
    older level it replaced, and an expired one, never."""
    clock = ManualClock(T0)
    lamp, other = Node("l1"), Node("l2")
    targets: dict[str, object] = {"l1": lamp, "l2": other}

    def level(cid: str, target: str, pct: float, at_s: int, life_s: int = 300) -> Command:
        decided = T0 + timedelta(seconds=at_s)
        return Command(
            cid,
            target,
            CommandKind.DIM_LEVEL_PCT,
            pct,
            decided + timedelta(seconds=life_s),
            "lighting",
            ramp_s=5.0,
            reason=f"program step {pct:g} %",
            decided_at=decided,
        )

    async with Store(store_url) as store:
        writer = CommandWriter(targets, clock, journal=StoreJournal(store, clock.now))
        await writer.write([level("old", "l1", 70, 0), level("short", "l2", 70, 0, life_s=30)])
        clock.advance(10)
        await writer.write([level("new", "l1", 30, 10)])
    clock.advance(60)  # killed; 60 s later back: "short" has expired
    async with Store(store_url) as store:
        fresh = CommandWriter(targets, clock, journal=StoreJournal(store, clock.now))
        res = await reapply_live(store, fresh, clock.now())
    assert [(r.command.command_id, r.status) for r in res] == [("new", CommandStatus.APPLIED)]
    assert res[0].command.reason == "program step 30 %"
    assert res[0].command.decided_at == T0 + timedelta(seconds=10)
    assert lamp.levels == [(70, "old"), (30, "new"), (30, "new")]
    assert other.levels == [(70, "short")]
