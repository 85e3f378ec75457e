"""Creating accounts and changing passwords: the one path used by ``waldstadt users`` and by
the demo.

A username is 1–64 characters of letters, digits, ``.``, ``_`` and ``-``; a password follows
the policy of :func:`api.passwords.check_password` (at least 12 characters, not a common
one); a member account names its member. Violations raise
:class:`~kernel.errors.ConfigError` naming the field and the reason. Hashing runs in a worker
thread: these functions may be called from a running service's event loop.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from argon2 import PasswordHasher

from api.auth import Role, default_hasher
from api.passwords import MIN_PASSWORD_LENGTH, check_password
from kernel.clock import RealClock
from kernel.errors import ConfigError
from store import Store
from store.errors import StoreError
from store.users import User

_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

#: The demo's logins, one per role (printed by the demo; refused outside it by nothing but
#: common sense: ``ensure_demo_users`` is called by the demo only).
DEMO_USERS: tuple[tuple[str, str, Role], ...] = (
    ("operator", "waldstadt-operator", Role.OPERATOR),
    ("member", "waldstadt-member", Role.MEMBER),
    ("lighting", "waldstadt-lighting", Role.LIGHTING_ENGINEER),
    ("auditor", "waldstadt-auditor", Role.AUDITOR),
)


def check_identity(username: str, role: str, member_id: str | None) -> Role:
    """The username, the role and the member link (everything but the password)."""
    if not _USERNAME.match(username):
        raise ConfigError(
            "username", "1-64 characters: letters, digits, '.', '_' or '-'", repr(username)
        )
    try:
        parsed = Role(role)
    except ValueError as exc:
        raise ConfigError(
            "role", f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}"
        ) from exc
    if parsed is Role.MEMBER and not member_id:
        raise ConfigError("member", "a member account needs --member (the member id it sees)")
    if parsed is not Role.MEMBER and member_id:
        raise ConfigError("member", f"only member accounts are linked to a member, not {role}")
    return parsed


def check_account(username: str, password: str, role: str, member_id: str | None) -> Role:
    parsed = check_identity(username, role, member_id)
    check_password(password, username)
    return parsed


async def add_user(
    store: Store,
    username: str,
    password: str,
    role: str,
    *,
    now: datetime,
    member_id: str | None = None,
    hasher: PasswordHasher | None = None,
) -> User:
    """Validate and create an account; a taken username is a ConfigError on ``username``."""
    parsed = check_account(username, password, role, member_id)
    password_hash = await asyncio.to_thread((hasher or default_hasher()).hash, password)
    try:
        return await store.users.create(
            username, password_hash, parsed.value, now=now, member_id=member_id
        )
    except StoreError as exc:
        raise ConfigError("username", exc.reason, repr(username)) from exc


async def change_password(
    store: Store,
    username: str,
    password: str,
    *,
    now: datetime,
    hasher: PasswordHasher | None = None,
) -> None:
    """A new password under the policy; every token and page session of the account dies
    (the credentials version moves on). An unknown user is a ConfigError on ``username``."""
    check_password(password, username)
    password_hash = await asyncio.to_thread((hasher or default_hasher()).hash, password)
    try:
        await store.users.set_password_hash(username, password_hash, now=now)
    except StoreError as exc:
        raise ConfigError("username", exc.reason, repr(username)) from exc


async def ensure_demo_users(
    store: Store,
    member_id: str,
    *,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> list[tuple[str, str, str]]:
    """One account per role for the demo: ``[(username, password, role), ...]``.

    The member account sees ``member_id``. ``now`` (the accounts' creation time) defaults to
    the wall clock: an account is created in real time even in a simulated town. Accounts that
    exist (a demo restarted on the same database) get the demo password again and are
    enabled, so the printed logins work.
    """
    hasher = hasher or default_hasher()
    now = now or RealClock().now()
    out: list[tuple[str, str, str]] = []
    for username, password, role in DEMO_USERS:
        mid = member_id if role is Role.MEMBER else None
        existing = await store.users.get(username)
        if existing is None:
            await add_user(store, username, password, role, now=now, member_id=mid, hasher=hasher)
        else:
            if existing.role != role.value or existing.member_id != mid:
                raise ConfigError(
                    "username",
                    f"exists with role {existing.role} / member {existing.member_id}; "
                    f"the demo needs {role.value} / {mid}",
                    repr(username),
                )
            await change_password(store, username, password, now=now, hasher=hasher)
            if existing.disabled:
                await store.users.set_disabled(username, False, now=now)
        out.append((username, password, role.value))
    return out


__all__ = [
    "DEMO_USERS",
    "MIN_PASSWORD_LENGTH",
    "add_user",
    "change_password",
    "check_account",
    "check_identity",
    "ensure_demo_users",
]
