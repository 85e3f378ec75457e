"""Accounts for the web API, their sessions and their failed logins.

**Accounts:** a unique username, a password hash (never a password), a role, and a
``credentials_version`` that every change of the credentials bumps (a new password, disabling,
enabling). Hashing and checking passwords is the API's job (argon2); this table keeps the
hash only. A ``member`` account names the member whose data it may see (``member_id``); the
database refuses a member account without one.

**Sessions** (``user_sessions``): every API token and every page session names one row, of
kind ``api`` or ``page``. A logout revokes its row; a credentials change revokes all rows of
the account; deleting an account deletes its rows, and creating an account deletes any rows
left under its name, so a token of an earlier account of the same name names nothing.

**Failed logins** (``login_failures``): a count per username and the instant until which
the account is locked; the API decides how long a lock lasts (:meth:`note_login_failure`
takes that rule), a successful login clears the row.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.dialect import insert_ignoring
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import ROLES, login_failures, user_sessions, users

SESSION_KINDS = ("api", "page")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    role: str
    member_id: str | None
    disabled: bool
    created_at: datetime
    credentials_version: int


@dataclass(frozen=True, slots=True)
class Session:
    """One API token's or page session's row; ``revoked_at`` is set by a logout or a
    credentials change."""

    session_id: str
    username: str
    kind: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LoginLock:
    """Failed logins of one username since the last success; locked until ``locked_until``
    (None: not locked)."""

    username: str
    failures: int
    last_failure_at: datetime
    locked_until: datetime | None


def _user(row: Any) -> User:
    r = row._mapping
    return User(**{k: r[k] for k in User.__dataclass_fields__})


def _session(row: Any, prefix: str = "") -> Session:
    r = row._mapping
    return Session(**{k: r[prefix + k] for k in Session.__dataclass_fields__})


def _lock(row: Any) -> LoginLock:
    r = row._mapping
    return LoginLock(**{k: r[k] for k in LoginLock.__dataclass_fields__})


async def _revoke_all(conn: AsyncConnection, usernames: list[str], now: datetime) -> None:
    await conn.execute(
        update(user_sessions)
        .where(user_sessions.c.username.in_(usernames), user_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


class UserRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        username: str,
        password_hash: str,
        role: str,
        *,
        now: datetime,
        member_id: str | None = None,
    ) -> User:
        """Create an account; a taken username or a bad role is a :class:`StoreError`.

        Sessions and failed logins left under the name (an earlier account of the same name)
        are deleted with it: the new account starts with nothing of the old one's."""
        what = f"create user {username!r}"
        if role not in ROLES:
            raise StoreError(what, f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if role == "member" and not member_id:
            raise StoreError(what, "a member account needs member_id")
        async with write_tx(self._engine, what) as conn:
            stmt = insert_ignoring(conn, users, "username").returning(*users.c)
            row = (
                await conn.execute(
                    stmt,
                    {
                        "username": username,
                        "password_hash": password_hash,
                        "role": role,
                        "member_id": member_id,
                        "disabled": False,
                        "created_at": now,
                    },
                )
            ).first()
            if row is not None:
                await conn.execute(
                    delete(user_sessions).where(user_sessions.c.username == username)
                )
                await conn.execute(
                    delete(login_failures).where(login_failures.c.username == username)
                )
        if row is None:
            raise StoreError(what, "username already taken")
        return _user(row)

    async def get(self, username: str) -> User | None:
        async with read_tx(self._engine, f"read user {username!r}") as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return None if row is None else _user(row)

    async def all(self) -> list[User]:
        async with read_tx(self._engine, "read users") as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(row) for row in rows]

    async def delete(self, username: str) -> None:
        """Delete an account and its sessions (its tokens stop working at once)."""
        what = f"delete user {username!r}"
        async with write_tx(self._engine, what) as conn:
            result = await conn.execute(delete(users).where(users.c.username == username))
            if result.rowcount != 1:
                raise StoreError(what, "no such user")
            await conn.execute(delete(user_sessions).where(user_sessions.c.username == username))
            await conn.execute(delete(login_failures).where(login_failures.c.username == username))

    async def delete_member_accounts(self, member_id: str) -> list[str]:
        """Delete the accounts linked to ``member_id`` (a member's erasure) and their sessions;
        returns their usernames. The audit log keeps naming them as actors: it is the
        accountability record."""
        async with write_tx(self._engine, f"delete the accounts of member {member_id!r}") as conn:
            names = [
                str(n)
                for n in (
                    await conn.execute(
                        select(users.c.username).where(users.c.member_id == member_id)
                    )
                ).scalars()
            ]
            if names:
                await conn.execute(delete(users).where(users.c.member_id == member_id))
                await conn.execute(delete(user_sessions).where(user_sessions.c.username.in_(names)))
        return sorted(names)

    async def set_password_hash(self, username: str, password_hash: str, *, now: datetime) -> None:
        """A new password: bumps the credentials version and revokes every session."""
        await self._change_credentials(
            username, f"set password of {username!r}", now, password_hash=password_hash
        )

    async def rehash_password(self, username: str, password_hash: str) -> None:
        """The same password under new hash parameters (at a login): sessions stay."""
        what = f"rehash password of {username!r}"
        async with write_tx(self._engine, what) as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(password_hash=password_hash)
            )
            if result.rowcount != 1:
                raise StoreError(what, "no such user")

    async def set_disabled(self, username: str, disabled: bool, *, now: datetime) -> None:
        """Disable or enable: bumps the credentials version and revokes every session."""
        verb = "disable" if disabled else "enable"
        await self._change_credentials(
            username, f"{verb} user {username!r}", now, disabled=disabled
        )

    async def _change_credentials(
        self, username: str, what: str, now: datetime, **values: object
    ) -> None:
        async with write_tx(self._engine, what) as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(credentials_version=users.c.credentials_version + 1, **values)
            )
            if result.rowcount != 1:
                raise StoreError(what, "no such user")
            await _revoke_all(conn, [username], now)

    # -- sessions ----------------------------------------------------------------------------

    async def open_session(
        self, username: str, kind: str, *, now: datetime, expires_at: datetime
    ) -> Session:
        """A new session of ``kind`` (``api`` or ``page``) with a random id; the account's
        expired sessions are purged on the way."""
        what = f"open a {kind} session for {username!r}"
        if kind not in SESSION_KINDS:
            raise StoreError(what, f"unknown session kind {kind!r}")
        session = Session(secrets.token_urlsafe(32), username, kind, now, expires_at, None)
        async with write_tx(self._engine, what) as conn:
            await conn.execute(
                delete(user_sessions).where(
                    user_sessions.c.username == username, user_sessions.c.expires_at <= now
                )
            )
            await conn.execute(
                user_sessions.insert().values(
                    session_id=session.session_id,
                    username=username,
                    kind=kind,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
        return session

    async def session_user(self, session_id: str) -> tuple[Session, User] | None:
        """The session and its account in one read; None if either is gone."""
        query = select(*(c.label(f"s_{c.name}") for c in user_sessions.c), *users.c).join_from(
            user_sessions, users, users.c.username == user_sessions.c.username
        )
        async with read_tx(self._engine, "read a session") as conn:
            row = (
                await conn.execute(query.where(user_sessions.c.session_id == session_id))
            ).first()
        return None if row is None else (_session(row, "s_"), _user(row))

    async def revoke_session(self, session_id: str, *, now: datetime) -> bool:
        """Revoke one session (a logout); False if it was unknown or already revoked."""
        async with write_tx(self._engine, "revoke a session") as conn:
            result = await conn.execute(
                update(user_sessions)
                .where(
                    user_sessions.c.session_id == session_id, user_sessions.c.revoked_at.is_(None)
                )
                .values(revoked_at=now)
            )
        return bool(result.rowcount == 1)

    # -- failed logins -------------------------------------------------------------------------

    async def login_lock(self, username: str) -> LoginLock | None:
        async with read_tx(self._engine, f"read failed logins of {username!r}") as conn:
            row = (
                await conn.execute(
                    select(login_failures).where(login_failures.c.username == username)
                )
            ).first()
        return None if row is None else _lock(row)

    async def note_login_failure(
        self,
        username: str,
        *,
        now: datetime,
        forget_after: timedelta,
        lock_for: Callable[[int], timedelta],
    ) -> LoginLock:
        """Count one failed login of ``username`` (any name, existing or not, so a lock does
        not tell which accounts exist) and lock it for ``lock_for(failures)`` (zero: no lock).
        Failures older than ``forget_after`` start the count anew. Atomic per username."""
        async with write_tx(self._engine, f"count a failed login of {username!r}") as conn:
            await conn.execute(
                insert_ignoring(conn, login_failures, "username"),
                {"username": username, "failures": 0, "last_failure_at": now, "locked_until": None},
            )
            row = (
                await conn.execute(
                    select(login_failures)
                    .where(login_failures.c.username == username)
                    .with_for_update()
                )
            ).one()
            before = _lock(row)
            failures = 1 if now - before.last_failure_at > forget_after else before.failures + 1
            lock = lock_for(failures)
            locked_until = now + lock if lock > timedelta(0) else None
            await conn.execute(
                update(login_failures)
                .where(login_failures.c.username == username)
                .values(failures=failures, last_failure_at=now, locked_until=locked_until)
            )
        return LoginLock(username, failures, now, locked_until)

    async def clear_login_failures(self, username: str) -> None:
        async with write_tx(self._engine, f"clear failed logins of {username!r}") as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.username == username))


__all__ = ["SESSION_KINDS", "LoginLock", "Session", "User", "UserRepository"]
