"""The ``waldstadt`` command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from api.commands.site import register as _register_site
from api.commands.users import register as _register_users

app = typer.Typer(
    help="Waldstadt: virtual power plant, energy sharing and street lighting.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Waldstadt: virtual power plant, energy sharing and street lighting."""


@app.command()
def demo(
    speed: Annotated[
        float | None, typer.Option(help="simulated seconds per real second (default: 144)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file describing the simulated devices")
    ] = None,
    broker: Annotated[
        str | None, typer.Option(help="mqtt://host:port of a broker; default: embedded amqtt")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many real seconds")
    ] = None,
) -> None:
    """Start simulated devices on loopback and show a live readout of what the drivers read."""
    # The demo is the one place where production entry points start simulators.
    from sims.demo import run_demo

    try:
        asyncio.run(run_demo(speed=speed, config=config, duration_s=duration, broker_url=broker))
    except KeyboardInterrupt:
        typer.echo("stopped")


@app.command()
def ingest(
    prefix: Annotated[str, typer.Option(help="telemetry topic prefix")] = "waldstadt",
) -> None:
    """Store device telemetry from the broker (WALDSTADT_BROKER_URL) in the database
    (WALDSTADT_DATABASE_URL), acknowledging each message after its commit."""
    from protocols.errors import ConfigError
    from scheduler.ingest import run_ingest
    from scheduler.observability import configure_logging
    from scheduler.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_ingest(settings, prefix=prefix))
    except KeyboardInterrupt:
        typer.echo("stopped")


_register_site(app)
_register_users(app)

if __name__ == "__main__":
    app()
