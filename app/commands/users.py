"""``waldstadt users add|list|disable``: local accounts of the web API.

The database is ``WALDSTADT_DATABASE_URL`` (the same settings as the service). Each change is
an audit record with the operating-system user as the actor (``cli:alice``, role ``cli``).
A password is asked for twice at a prompt, or read as one line from standard input with
``--password-stdin`` (for scripts: ``printf '%s\\n' "$PW" | waldstadt users add …``).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Annotated

import typer

from api.accounts import add_user, check_account, ensure_demo_users
from api.audit import record
from kernel.clock import RealClock
from kernel.errors import ConfigError
from scheduler.settings import Settings, load_settings
from store import Store
from store.errors import StoreError

#: The role recorded in the audit log for account changes made on the command line.
CLI_ROLE = "cli"


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


def register(app: typer.Typer) -> None:
    """Add the ``users`` sub-command group to ``app``."""
    users = typer.Typer(
        help="Accounts of the web API (operator, member, lighting_engineer, auditor)."
    )
    app.add_typer(users, name="users")

    @users.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="username")],
        role: Annotated[str, typer.Option(help="operator, member, lighting_engineer or auditor")],
        member: Annotated[
            str | None, typer.Option(help="member id a member account sees (member role only)")
        ] = None,
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="read the password from standard input")
        ] = False,
    ) -> None:
        """Create an account."""
        settings = _settings()
        try:
            # Validate before prompting, so a typo in the role does not cost a password entry.
            check_account(name, "x" * 64, role, member)
        except ConfigError as exc:
            raise typer.BadParameter(exc.reason, param_hint=f"'{exc.field}'") from exc
        password = _read_password(password_stdin)

        async def run() -> str:
            async with Store(settings.database_url) as store:
                now = RealClock().now()
                user = await add_user(store, name, password, role, now=now, member_id=member)
                await record(
                    store,
                    actor=cli_actor(),
                    role=CLI_ROLE,
                    action="user.add",
                    target=f"user:{name}",
                    result="created",
                    now=now,
                    new_value={"role": user.role, "member_id": user.member_id},
                )
                return user.role

        try:
            created_role = asyncio.run(run())
        except ConfigError as exc:
            raise typer.BadParameter(exc.reason, param_hint=f"'{exc.field}'") from exc
        except StoreError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        suffix = f" for member {member}" if member else ""
        typer.echo(f"created {name} ({created_role}){suffix}")

    @users.command("list")
    def list_() -> None:
        """List the accounts: username, role, member, state."""
        settings = _settings()

        async def run() -> list[tuple[str, str, str, str]]:
            async with Store(settings.database_url) as store:
                return [
                    (u.username, u.role, u.member_id or "-", "disabled" if u.disabled else "active")
                    for u in await store.users.all()
                ]

        rows = asyncio.run(run())
        if not rows:
            typer.echo("no accounts")
            return
        width = max(len(r[0]) for r in rows)
        typer.echo(f"{'username':<{width}}  {'role':<17}  {'member':<12}  state")
        for username, role, member_id, state in rows:
            typer.echo(f"{username:<{width}}  {role:<17}  {member_id:<12}  {state}")

    @users.command("disable")
    def disable(name: Annotated[str, typer.Argument(help="username")]) -> None:
        """Disable an account: it can no longer log in, and its tokens stop working at once."""
        settings = _settings()

        async def run() -> None:
            async with Store(settings.database_url) as store:
                before = await store.users.get(name)
                await store.users.set_disabled(name, True)
                await record(
                    store,
                    actor=cli_actor(),
                    role=CLI_ROLE,
                    action="user.disable",
                    target=f"user:{name}",
                    result="disabled",
                    now=RealClock().now(),
                    old_value={"disabled": before.disabled if before else None},
                    new_value={"disabled": True},
                )

        try:
            asyncio.run(run())
        except StoreError as exc:
            raise typer.BadParameter(exc.reason, param_hint="'NAME'") from exc
        typer.echo(f"disabled {name}")


__all__ = ["ensure_demo_users", "register"]
