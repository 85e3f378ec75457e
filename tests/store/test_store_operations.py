"""Commands (idempotent, expiring), alarms (raise/clear events) and user accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import Command, Store
from store.errors import StoreError
from tests.store.conftest import T0


def cmd(cid: str, target: str = "inv-7", ttl_s: int = 300) -> Command:
    return Command(
        cid, target, {"power_limit_pct": 60, "revert_s": 600}, T0, T0 + timedelta(seconds=ttl_s)
    )


async def test_command_insert_is_idempotent(store: Store) -> None:
    new, first = await store.commands.insert(cmd("c-1"))
    again, second = await store.commands.insert(cmd("c-1", target="someone-else"))
    assert new
    assert not again
    assert second == first
    assert second.command.target == "inv-7"
    assert second.status == "pending"


async def test_live_commands_are_what_a_restart_reapplies(store: Store) -> None:
    await store.commands.insert(cmd("short", ttl_s=60))
    await store.commands.insert(cmd("long", ttl_s=3600))
    await store.commands.insert(cmd("done", ttl_s=3600))
    await store.commands.set_status("done", "acknowledged", now=T0)
    later = T0 + timedelta(seconds=120)
    assert [c.command.command_id for c in await store.commands.live(later)] == ["long"]
    assert await store.commands.expire(later) == 1
    short = await store.commands.get("short")
    assert short is not None
    assert short.status == "expired"


async def test_live_commands_by_id_prefix(store: Store) -> None:
    for cid in ("override-1", "override_x", "tick-l1", "override-2"):
        await store.commands.insert(cmd(cid, ttl_s=3600))
    live = await store.commands.live(T0, id_prefix="override-")
    assert sorted(c.command.command_id for c in live) == ["override-1", "override-2"]


async def test_a_final_status_is_not_left(store: Store) -> None:
    await store.commands.insert(cmd("c-2"))
    await store.commands.set_status("c-2", "sent", now=T0)
    await store.commands.set_status("c-2", "acknowledged", now=T0)
    after = await store.commands.set_status("c-2", "failed", now=T0, detail="late nack")
    assert after.status == "acknowledged"


async def test_unknown_command_or_status_is_an_error_naming_it(store: Store) -> None:
    with pytest.raises(StoreError, match="no such command"):
        await store.commands.set_status("nope", "sent", now=T0)
    await store.commands.insert(cmd("c-3"))
    with pytest.raises(StoreError, match="'bogus'"):
        await store.commands.set_status("c-3", "bogus", now=T0)


async def test_alarm_raise_and_clear_are_events(store: Store) -> None:
    key = "device:inv-7:communication_lost"
    raised = await store.alarms.raise_alarm(
        key,
        source="inv-7",
        kind="communication_lost",
        severity="critical",
        message="no answer for 60 s",
        now=T0,
    )
    assert raised is not None
    again = await store.alarms.raise_alarm(
        key,
        source="inv-7",
        kind="communication_lost",
        severity="critical",
        message="still",
        now=T0 + timedelta(seconds=5),
    )
    assert again is None
    assert [a.alarm_key for a in await store.alarms.active()] == [key]
    cleared = await store.alarms.clear_alarm(
        key, message="answers again", now=T0 + timedelta(minutes=1)
    )
    assert cleared is not None
    assert cleared.severity == "critical"
    assert await store.alarms.clear_alarm(key, message="x", now=T0) is None
    assert await store.alarms.active() == []
    assert [e.event for e in await store.alarms.history(T0)] == ["raise", "clear"]


async def test_users(store: Store) -> None:
    op = await store.users.create("anna", "$argon2id$x", "operator", now=T0)
    assert op.member_id is None
    member = await store.users.create("bert", "$argon2id$y", "member", now=T0, member_id="m1")
    assert member.member_id == "m1"
    with pytest.raises(StoreError, match="taken"):
        await store.users.create("anna", "h", "auditor", now=T0)
    with pytest.raises(StoreError, match="member_id"):
        await store.users.create("carl", "h", "member", now=T0)
    with pytest.raises(StoreError, match="unknown role"):
        await store.users.create("dora", "h", "root", now=T0)
    await store.users.set_disabled("anna", True, now=T0)
    await store.users.set_password_hash("bert", "$argon2id$z", now=T0)
    anna, bert = await store.users.all()
    assert anna.disabled
    assert bert.password_hash == "$argon2id$z"
    with pytest.raises(StoreError, match="no such user"):
        await store.users.set_disabled("nobody", True, now=T0)


async def test_ping_answers_with_a_real_query(store: Store) -> None:
    await store.ping()


async def test_ping_of_a_database_that_went_away_raises_a_store_error() -> None:
    from kernel.errors import WaldstadtError
    from tests.db_fixtures import create_pg_database, drop_pg_database, pg_url

    name = await create_pg_database()
    async with Store(pg_url(name)) as gone:
        await gone.ping()
        await drop_pg_database(name)
        with pytest.raises(WaldstadtError, match="ping the database"):
            await gone.ping()
