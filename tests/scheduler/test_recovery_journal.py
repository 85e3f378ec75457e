"""The command journal: a batch of results is one ``record_many`` (one transaction), recording
it again duplicates nothing, and batches that queue up behind a slow record go together into
the next one, with the same outcome as recorded one by one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kernel.clock import ManualClock
from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from scheduler.journal import StoreJournal, outcomes
from scheduler.journal_background import BackgroundJournal
from store import Store
from store.commands import CommandOutcome

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def limit(cid: str, target: str = "inv-a", pct: float = 40.0) -> Command:
    return Command(cid, target, CommandKind.POWER_LIMIT_PCT, pct, T0 + timedelta(minutes=15),
                   "dispatch", revert_s=600)  # fmt: skip


class CountingJournal:
    """The store's journal, counting its records (how many transactions the batches cost)."""

    def __init__(self, inner: StoreJournal) -> None:
        self.inner = inner
        self.sizes: list[int] = []

    async def record_outcomes(self, entries: Sequence[CommandOutcome], now: datetime) -> None:
        self.sizes.append(len(entries))
        await self.inner.record_outcomes(entries, now)


def test_only_applied_and_failed_commands_have_journal_entries() -> None:
    results = [
        CommandResult(limit("a"), CommandStatus.APPLIED),
        CommandResult(limit("b"), CommandStatus.FAILED, "timeout after 2 s"),
        CommandResult(limit("c"), CommandStatus.UNSUPPORTED, "does not accept it"),
        CommandResult(limit("d"), CommandStatus.DUPLICATE),
        CommandResult(limit("e"), CommandStatus.EXPIRED, "expired"),
    ]
    got = [(o.command.command_id, o.status, o.detail) for o in outcomes(results, T0)]
    assert got == [
        ("a", "sent", None),
        ("b", "failed", "timeout after 2 s"),
        ("c", "failed", "does not accept it"),
    ]


async def test_a_batch_journaled_twice_is_stored_once(store_url: str) -> None:
    clock = ManualClock(T0)
    batch = [CommandResult(limit(f"q1-{i}", f"inv-{i}"), CommandStatus.APPLIED) for i in range(84)]
    batch.append(CommandResult(limit("q1-x", "bat-1"), CommandStatus.FAILED, "nack"))
    async with Store(store_url) as store:
        journal = StoreJournal(store, clock.now)
        await journal.record(batch)
        first = await store.commands.get("q1-5")
        clock.advance(60)
        await journal.record(batch)  # a restart re-applying the same ids, say
        live = await store.commands.live(clock.now())
        assert sorted(c.command.command_id for c in live) == sorted(f"q1-{i}" for i in range(84))
        assert await store.commands.get("q1-5") == first
        failed = await store.commands.get("q1-x")
        assert failed is not None
        assert (failed.status, failed.detail) == ("failed", "nack")


async def test_batches_queued_behind_a_record_go_into_one(store_url: str) -> None:
    clock = ManualClock(T0)
    async with Store(store_url) as store:
        counting = CountingJournal(StoreJournal(store, clock.now))
        async with BackgroundJournal(counting, clock.now) as background:
            # five cycles' batches arrive before the journal task gets to run
            await background.record([CommandResult(limit("x"), CommandStatus.APPLIED)])
            for i in range(3):
                await background.record(
                    [CommandResult(limit(f"n-{i}", f"inv-{i}"), CommandStatus.APPLIED)]
                )
            await background.record([CommandResult(limit("x"), CommandStatus.FAILED, "nack")])
            await background.flush()
            assert counting.sizes == [5]
            await background.record([CommandResult(limit("y"), CommandStatus.APPLIED)])
            await asyncio.sleep(0)  # the task takes it alone
        # leaving the context recorded what was still queued
        assert counting.sizes == [5, 1]
        stored = {c: await store.commands.get(c) for c in ("x", "n-0", "n-1", "n-2", "y")}
    assert {c: s.status for c, s in stored.items() if s is not None} == {
        "x": "failed",  # in order: sent, then failed (as if recorded one by one)
        "n-0": "sent",
        "n-1": "sent",
        "n-2": "sent",
        "y": "sent",
    }
