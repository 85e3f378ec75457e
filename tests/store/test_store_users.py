"""Accounts' sessions and failed logins in the store (SQLite and PostgreSQL): what revokes a
session, and the atomic failure count behind the login lockout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from store import Store, StoreError
from tests.store.conftest import T0

HOUR = timedelta(hours=1)


def lock_after_three(failures: int) -> timedelta:
    """No lock for the first two failures, then 10 s doubling per failure."""
    return timedelta(0) if failures < 3 else timedelta(seconds=10 * 2 ** (failures - 3))


async def live(store: Store, session_id: str) -> bool:
    found = await store.users.session_user(session_id)
    return found is not None and found[0].revoked_at is None


async def test_a_session_names_its_account_and_dies_with_a_logout(store: Store) -> None:
    await store.users.create("anna", "$argon2id$a", "operator", now=T0)
    api = await store.users.open_session("anna", "api", now=T0, expires_at=T0 + HOUR)
    page = await store.users.open_session("anna", "page", now=T0, expires_at=T0 + HOUR)
    assert api.session_id != page.session_id
    found = await store.users.session_user(api.session_id)
    assert found is not None
    session, user = found
    assert (session.kind, session.username, user.username, user.credentials_version) == (
        "api",
        "anna",
        "anna",
        0,
    )
    assert await store.users.revoke_session(api.session_id, now=T0)
    assert not await store.users.revoke_session(api.session_id, now=T0)  # already revoked
    assert not await live(store, api.session_id)
    assert await live(store, page.session_id)  # the other session stays
    assert await store.users.session_user("no-such-session") is None
    with pytest.raises(StoreError, match="kind"):
        await store.users.open_session("anna", "cookie", now=T0, expires_at=T0 + HOUR)


@pytest.mark.parametrize("change", ["password", "disable", "enable"])
async def test_a_credentials_change_bumps_the_version_and_revokes_every_session(
    store: Store, change: str
) -> None:
    await store.users.create("anna", "$argon2id$a", "operator", now=T0)
    sessions = [
        await store.users.open_session("anna", kind, now=T0, expires_at=T0 + HOUR)
        for kind in ("api", "page", "api")
    ]
    if change == "password":
        await store.users.set_password_hash("anna", "$argon2id$b", now=T0)
    else:
        await store.users.set_disabled("anna", change == "disable", now=T0)
    assert [await live(store, s.session_id) for s in sessions] == [False, False, False]
    user = await store.users.get("anna")
    assert user is not None
    assert user.credentials_version == 1


async def test_a_rehash_keeps_the_sessions(store: Store) -> None:
    await store.users.create("anna", "$argon2id$a", "operator", now=T0)
    s = await store.users.open_session("anna", "api", now=T0, expires_at=T0 + HOUR)
    await store.users.rehash_password("anna", "$argon2id$new-parameters")
    assert await live(store, s.session_id)
    user = await store.users.get("anna")
    assert user is not None
    assert (user.password_hash, user.credentials_version) == ("$argon2id$new-parameters", 0)


@pytest.mark.parametrize("how", ["delete", "erase"])
async def test_a_recreated_account_inherits_no_session(store: Store, how: str) -> None:
    await store.users.create("anna", "$argon2id$a", "member", now=T0, member_id="m1")
    old = await store.users.open_session("anna", "api", now=T0, expires_at=T0 + HOUR)
    if how == "delete":
        await store.users.delete("anna")
    else:
        assert await store.users.delete_member_accounts("m1") == ["anna"]
    assert await store.users.session_user(old.session_id) is None
    await store.users.create("anna", "$argon2id$b", "member", now=T0, member_id="m1")
    assert await store.users.session_user(old.session_id) is None
    with pytest.raises(StoreError, match="no such user"):
        await store.users.delete("nobody")


async def test_expired_sessions_are_purged_when_the_account_opens_another(store: Store) -> None:
    await store.users.create("anna", "$argon2id$a", "operator", now=T0)
    old = await store.users.open_session("anna", "api", now=T0, expires_at=T0 + HOUR)
    await store.users.open_session("anna", "api", now=T0 + 2 * HOUR, expires_at=T0 + 3 * HOUR)
    assert await store.users.session_user(old.session_id) is None


async def test_failed_logins_lock_by_the_rule_and_are_forgotten(store: Store) -> None:
    note = store.users.note_login_failure
    locks = [
        await note("anna", now=T0, forget_after=HOUR, lock_for=lock_after_three) for _ in range(4)
    ]
    assert [lock.failures for lock in locks] == [1, 2, 3, 4]
    assert [lock.locked_until for lock in locks] == [
        None,
        None,
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    ]
    assert await store.users.login_lock("anna") == locks[-1]
    later = await note("anna", now=T0 + 2 * HOUR, forget_after=HOUR, lock_for=lock_after_three)
    assert (later.failures, later.locked_until) == (1, None)  # an hour without failures
    await store.users.clear_login_failures("anna")
    assert await store.users.login_lock("anna") is None


async def test_concurrent_failures_are_all_counted(
    store: Store, open_store: Callable[..., Store]
) -> None:
    async with open_store() as other:
        await asyncio.gather(
            *(
                s.users.note_login_failure(
                    "anna", now=T0, forget_after=HOUR, lock_for=lock_after_three
                )
                for s in [store, other] * 6
            )
        )
    lock = await store.users.login_lock("anna")
    assert lock is not None
    assert lock.failures == 12
