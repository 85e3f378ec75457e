"""The journal's batch: many commands inserted and moved to their status in one transaction,
idempotent on command id (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from store import Store
from store.commands import Command, CommandOutcome, fold_outcomes
from store.errors import StoreError
from store.schema import commands
from tests.db_fixtures import T0

LATER = T0 + timedelta(minutes=1)


def cmd(cid: str, target: str = "inv-7", pct: float = 40.0) -> Command:
    return Command(cid, target, {"kind": "power_limit_pct", "value": pct}, T0,
                   T0 + timedelta(minutes=15))  # fmt: skip


async def rows(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(commands))).scalar_one())


async def test_a_batch_is_stored_with_each_status_and_detail(store: Store) -> None:
    batch = [CommandOutcome(cmd(f"q1-{i}", f"inv-{i}"), "sent") for i in range(100)]
    batch.append(CommandOutcome(cmd("q1-x", "bat-1"), "failed", "timeout after 2 s"))
    inserted = await store.commands.record_many(batch, now=LATER)
    assert inserted == {o.command.command_id for o in batch}
    assert await rows(store) == 101
    sent = await store.commands.get("q1-7")
    assert sent is not None
    assert (sent.status, sent.status_changed_at, sent.detail) == ("sent", LATER, None)
    assert sent.command == cmd("q1-7", "inv-7")
    failed = await store.commands.get("q1-x")
    assert failed is not None
    assert (failed.status, failed.detail) == ("failed", "timeout after 2 s")
    # what a restart re-applies: the sent ones, not the failed one
    assert len(await store.commands.live(LATER)) == 100


async def test_recording_the_same_batch_again_changes_nothing(store: Store) -> None:
    batch = [CommandOutcome(cmd("a"), "sent"), CommandOutcome(cmd("b", "inv-8"), "failed", "nack")]
    assert await store.commands.record_many(batch, now=LATER) == {"a", "b"}
    before = {c: await store.commands.get(c) for c in ("a", "b")}
    again = await store.commands.record_many(batch, now=LATER + timedelta(minutes=5))
    assert again == frozenset()
    assert await rows(store) == 2
    assert {c: await store.commands.get(c) for c in ("a", "b")} == before


async def test_a_stored_command_keeps_its_value_and_moves_forward_only(store: Store) -> None:
    await store.commands.insert(cmd("kept", pct=40.0))
    await store.commands.insert(cmd("done", target="inv-9"))
    await store.commands.set_status("done", "acknowledged", now=T0)
    inserted = await store.commands.record_many(
        [
            CommandOutcome(cmd("kept", pct=70.0), "sent"),  # same id, other value
            CommandOutcome(cmd("done", target="inv-9"), "failed", "late"),
            CommandOutcome(cmd("new"), "sent"),
        ],
        now=LATER,
    )
    assert inserted == {"new"}
    kept = await store.commands.get("kept")
    assert kept is not None
    assert kept.command.value["value"] == 40.0  # the first insert's value
    assert (kept.status, kept.status_changed_at) == ("sent", LATER)
    done = await store.commands.get("done")
    assert done is not None
    assert (done.status, done.detail) == ("acknowledged", None)  # final stays final


async def test_outcomes_for_one_id_count_in_order(store: Store) -> None:
    batch = [
        CommandOutcome(cmd("x"), "sent"),
        CommandOutcome(cmd("x"), "acknowledged"),
        CommandOutcome(cmd("x"), "failed", "too late"),  # after a final status: ignored
        CommandOutcome(cmd("y"), "failed", "nack"),
        CommandOutcome(cmd("y"), "sent"),  # ignored likewise
    ]
    assert await store.commands.record_many(batch, now=LATER) == {"x", "y"}
    assert await rows(store) == 2
    x, y = await store.commands.get("x"), await store.commands.get("y")
    assert x is not None
    assert y is not None
    assert (x.status, x.detail) == ("acknowledged", None)
    assert (y.status, y.detail) == ("failed", "nack")


async def test_an_unknown_status_is_refused_before_anything_is_stored(store: Store) -> None:
    batch = [CommandOutcome(cmd("ok"), "sent"), CommandOutcome(cmd("bad"), "done")]
    with pytest.raises(StoreError, match=r"command bad.*unknown status 'done'"):
        await store.commands.record_many(batch, now=LATER)
    assert await rows(store) == 0


async def test_an_empty_batch_needs_no_transaction(store: Store) -> None:
    assert await store.commands.record_many([], now=LATER) == frozenset()


def test_fold_keeps_the_first_command_and_the_last_allowed_status() -> None:
    folded = fold_outcomes(
        [
            CommandOutcome(cmd("a", pct=10.0), "pending"),
            CommandOutcome(cmd("a", pct=99.0), "sent"),
        ]
    )
    assert folded == {"a": CommandOutcome(cmd("a", pct=10.0), "sent")}
