"""Accounts for the web API: a unique username, a password hash (never a password), a role.

Hashing and checking passwords is the API's job (argon2); this table only keeps the hash. A
``member`` account names the member whose data it may see (``member_id``); the database
refuses a member account without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.dialect import insert_ignoring
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import ROLES, users


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    role: str
    member_id: str | None
    disabled: bool
    created_at: datetime


def _user(row: object) -> User:
    r = row._mapping  # type: ignore[attr-defined]
    return User(**{k: r[k] for k in User.__dataclass_fields__})


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
        """Create an account; a taken username or a bad role is a :class:`StoreError`."""
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

    async def delete_member_accounts(self, member_id: str) -> list[str]:
        """Delete the accounts linked to ``member_id`` (a member's erasure); returns their
        usernames. The audit log keeps naming them as actors: it is the accountability record."""
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
        return sorted(names)

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        await self._update(username, f"set password of {username!r}", password_hash=password_hash)

    async def set_disabled(self, username: str, disabled: bool) -> None:
        await self._update(username, f"disable user {username!r}", disabled=disabled)

    async def _update(self, username: str, what: str, **values: object) -> None:
        async with write_tx(self._engine, what) as conn:
            result = await conn.execute(
                update(users).where(users.c.username == username).values(**values)
            )
            if result.rowcount != 1:
                raise StoreError(what, "no such user")
