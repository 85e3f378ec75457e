"""The ``waldstadt`` command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.commands.audit import register as _register_audit
from app.commands.broker import register as _register_broker
from app.commands.service import register as _register_service
from app.commands.site import register as _register_site
from app.commands.users import register as _register_users

app = typer.Typer(
    help="Waldstadt: virtual power plant, energy sharing and street lighting.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Waldstadt: virtual power plant, energy sharing and street lighting."""


@app.command()
def ingest(
    prefix: Annotated[str, typer.Option(help="telemetry topic prefix")] = "waldstadt",
    site: Annotated[
        str | None, typer.Option(help="site file: check devices, channels and ratings")
    ] = None,
) -> None:
    """Store device telemetry from the broker (WALDSTADT_BROKER_URL) in the database
    (WALDSTADT_DATABASE_URL), acknowledging each message after its commit; implausible
    readings are quarantined."""
    from kernel.errors import ConfigError
    from scheduler.ingest import run_ingest
    from scheduler.observability import configure_logging
    from scheduler.settings import load_settings
    from scheduler.site import load_site

    try:
        settings = load_settings()
        world = load_site(site) if site is not None else None
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_ingest(settings, prefix=prefix, site=world))
    except KeyboardInterrupt:
        typer.echo("stopped")


_register_service(app)
_register_site(app)
_register_users(app)
_register_audit(app)
_register_broker(app)

if __name__ == "__main__":
    app()
