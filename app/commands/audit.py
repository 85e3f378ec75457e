"""``waldstadt audit head|verify``: export the audit chain's head and check the chain later.

``head`` verifies the chain under ``WALDSTADT_AUDIT_KEY`` and prints ``COUNT:HASH`` (the
number of records and the newest hash) on one line, for an auditor to keep where the service
cannot write; with a chain that does not verify it prints the reason and exits 1.
``verify --head COUNT:HASH`` checks the chain against such a head: an edited record, a chain
recomputed without the key and a truncated tail each exit 1 with the reason. Both say how
many records were written before the key (sealed, protected from the seal on).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from api.state import audit_key_of
from kernel.errors import ConfigError
from scheduler.settings import load_settings
from store import ChainReport, Store
from store.audit import ChainHead
from store.errors import StoreError


def _verify(head: ChainHead | None) -> ChainReport:
    try:
        settings = load_settings()
        key = audit_key_of(settings)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def run() -> ChainReport:
        async with Store(settings.database_url) as store:
            return await store.audit.verify(key, head)

    try:
        return asyncio.run(run())
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _unkeyed_note(report: ChainReport) -> str:
    if not report.unkeyed:
        return ""
    return f" ({report.unkeyed} records from before the audit key, sealed)"


def head_command() -> None:
    """Print the head to export (COUNT:HASH) of a chain that verifies."""
    report = _verify(None)
    if not report.ok:
        typer.echo(f"the audit chain does not verify: {report.reason}", err=True)
        raise typer.Exit(1)
    typer.echo(str(report.head))
    if report.unkeyed:
        typer.echo(f"{report.unkeyed} records from before the audit key, sealed", err=True)


def verify_command(
    head: Annotated[
        str | None, typer.Option(help="COUNT:HASH as printed by 'waldstadt audit head' earlier")
    ] = None,
) -> None:
    """Verify the chain under the audit key (and against an exported head)."""
    try:
        exported = None if head is None else ChainHead.parse(head)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--head'") from exc
    report = _verify(exported)
    if not report.ok:
        typer.echo(f"FAILED after {report.checked} records: {report.reason}", err=True)
        raise typer.Exit(1)
    against = f" against {exported}" if exported is not None else ""
    typer.echo(f"ok: {report.checked} records verify{against}{_unkeyed_note(report)}")


def register(app: typer.Typer) -> None:
    """Add the ``audit`` sub-command group to ``app``."""
    audit = typer.Typer(help="The audit log's keyed hash chain: export its head, verify it.")
    app.add_typer(audit, name="audit")
    audit.command("head")(head_command)
    audit.command("verify")(verify_command)


__all__ = ["register"]
