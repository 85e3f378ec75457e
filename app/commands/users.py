"""``waldstadt users add|list|passwd|disable|enable|delete``: local accounts of the web API.

The database is ``WALDSTADT_DATABASE_URL`` (the same settings as the service). Each change is
an audit record with the operating-system user as the actor (``cli:alice``, role ``cli``),
chained under ``WALDSTADT_AUDIT_KEY``. A password is asked for twice at a prompt without
echo, or read as one line from standard input with ``--password-stdin`` (for scripts:
``printf '%s\\n' "$PW" | waldstadt users passwd anna --password-stdin``); it must pass the
password policy (:func:`api.passwords.check_password`). ``passwd``, ``disable`` and
``delete`` end every token and page session of the account at once.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from api.accounts import add_user, change_password, check_identity, ensure_demo_users
from api.audit import record
from api.state import audit_key_of
from kernel.clock import RealClock
from kernel.errors import ConfigError
from scheduler.settings import Settings, load_settings
from store import Store
from store.errors import StoreError

T = TypeVar("T")

#: The role recorded in the audit log for account changes made on the command line.
CLI_ROLE = "cli"

Name = Annotated[str, typer.Argument(help="username")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from standard input")
]


def cli_actor() -> str:
    """Who ran the command, as far as the operating system knows."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _run(work: Callable[[Store], Awaitable[T]], param_hint: str = "'NAME'") -> T:
    """``work(store)`` on the configured database; a bad value is a usage error (exit 2)
    naming the field, a database that cannot be reached exit 1."""
    settings = _settings()

    async def run() -> T:
        async with Store(settings.database_url) as store:
            return await work(store)

    try:
        return asyncio.run(run())
    except ConfigError as exc:
        hint = param_hint if exc.field == "username" else f"'{exc.field}'"
        raise typer.BadParameter(exc.reason, param_hint=hint) from exc
    except StoreError as exc:
        if exc.reason in ("no such user", "username already taken"):
            raise typer.BadParameter(exc.reason, param_hint=param_hint) from exc
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _audit(store: Store, action: str, name: str, result: str, **values: Any) -> None:
    await record(
        store,
        audit_key_of(_settings()),
        actor=cli_actor(),
        role=CLI_ROLE,
        action=action,
        target=f"user:{name}",
        result=result,
        now=RealClock().now(),
        **values,
    )


def add_command(
    name: Name,
    role: Annotated[str, typer.Option(help="operator, member, lighting_engineer or auditor")],
    member: Annotated[
        str | None, typer.Option(help="member id a member account sees (member role only)")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account."""
    try:
        # Validate before prompting, so a typo in the role does not cost a password entry.
        check_identity(name, role, member)
    except ConfigError as exc:
        raise typer.BadParameter(exc.reason, param_hint=f"'{exc.field}'") from exc
    password = _read_password(password_stdin)

    async def work(store: Store) -> str:
        now = RealClock().now()
        user = await add_user(store, name, password, role, now=now, member_id=member)
        new = {"role": user.role, "member_id": user.member_id}
        await _audit(store, "user.add", name, "created", new_value=new)
        return user.role

    created_role = _run(work, "'username'")
    suffix = f" for member {member}" if member else ""
    typer.echo(f"created {name} ({created_role}){suffix}")


def list_command() -> None:
    """List the accounts: username, role, member, state."""

    async def work(store: Store) -> list[tuple[str, str, str, str]]:
        return [
            (u.username, u.role, u.member_id or "-", "disabled" if u.disabled else "active")
            for u in await store.users.all()
        ]

    rows = _run(work)
    if not rows:
        typer.echo("no accounts")
        return
    width = max(len(r[0]) for r in rows)
    typer.echo(f"{'username':<{width}}  {'role':<17}  {'member':<12}  state")
    for username, role, member_id, state in rows:
        typer.echo(f"{username:<{width}}  {role:<17}  {member_id:<12}  {state}")


def passwd_command(name: Name, password_stdin: PasswordStdin = False) -> None:
    """Set a new password: the account's tokens and page sessions stop working at once."""

    async def exists(store: Store) -> bool:
        return await store.users.get(name) is not None

    if not _run(exists):  # before prompting: a typo in the name costs no password entry
        raise typer.BadParameter("no such user", param_hint="'NAME'")
    password = _read_password(password_stdin)

    async def work(store: Store) -> None:
        await change_password(store, name, password, now=RealClock().now())
        await _audit(store, "user.passwd", name, "changed")

    _run(work)
    typer.echo(f"password of {name} changed; its sessions are ended")


def _set_disabled(name: str, disabled: bool) -> None:
    async def work(store: Store) -> None:
        before = await store.users.get(name)
        await store.users.set_disabled(name, disabled, now=RealClock().now())
        verb = "disable" if disabled else "enable"
        await _audit(
            store,
            f"user.{verb}",
            name,
            f"{verb}d",
            old_value={"disabled": before.disabled if before else None},
            new_value={"disabled": disabled},
        )

    _run(work)


def disable_command(name: Name) -> None:
    """Disable an account: it can no longer log in, and its tokens stop working at once."""
    _set_disabled(name, True)
    typer.echo(f"disabled {name}")


def enable_command(name: Name) -> None:
    """Enable a disabled account (its old tokens stay dead: it logs in anew)."""
    _set_disabled(name, False)
    typer.echo(f"enabled {name}")


def delete_command(name: Name) -> None:
    """Delete an account and its sessions (the audit log keeps naming it as an actor)."""

    async def work(store: Store) -> None:
        before = await store.users.get(name)
        await store.users.delete(name)
        old = None if before is None else {"role": before.role, "member_id": before.member_id}
        await _audit(store, "user.delete", name, "deleted", old_value=old)

    _run(work)
    typer.echo(f"deleted {name}")


def register(app: typer.Typer) -> None:
    """Add the ``users`` sub-command group to ``app``."""
    users = typer.Typer(
        help="Accounts of the web API (operator, member, lighting_engineer, auditor)."
    )
    app.add_typer(users, name="users")
    users.command("add")(add_command)
    users.command("list")(list_command)
    users.command("passwd")(passwd_command)
    users.command("disable")(disable_command)
    users.command("enable")(enable_command)
    users.command("delete")(delete_command)


__all__ = ["ensure_demo_users", "register"]
