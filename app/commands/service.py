"""``waldstadt run --site PATH`` and ``waldstadt demo``: the running service.

``run`` reads the process settings from ``WALDSTADT_*`` and the site file, then starts
:class:`scheduler.service.Service` on the real clock with the web app on
``WALDSTADT_HTTP_HOST:WALDSTADT_HTTP_PORT``. A bad site file or a bad environment value is
one line on stderr and exit code 1:

* site file: ``<file>:<line>: <key>: <reason>``
* environment: ``environment: WALDSTADT_<NAME>: <reason>``

``run`` refuses ``WALDSTADT_MODE=demo``: the demo's public secrets and logins belong to
``waldstadt demo`` only, never to a service on real devices. ``demo`` runs the simulated town
through the same service (:mod:`app.demo`). Ctrl-C stops either cleanly; so does SIGTERM
(what systemd and container runtimes send), with one log line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from app.commands.site import format_config_error
from kernel.clock import Clock, RealClock
from kernel.errors import ConfigError, WaldstadtError
from scheduler.settings import Settings
from scheduler.site import Site

log = logging.getLogger(__name__)


def _environment_error(exc: ConfigError) -> str:
    return f"environment: {exc.field}: {exc.reason}"


async def run_site(settings: Settings, site: Site, clock: Clock | None = None) -> None:
    """The service and its web app in this event loop, until cancelled (Ctrl-C) or SIGTERM,
    which logs one line and leaves through the same clean shutdown."""
    from api.app import create_app
    from app.heap import freeze_startup_heap
    from app.service import Service
    from app.web import serve_web

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        if not terminated and main is not None:
            terminated = True
            log.info("SIGTERM received: stopping the service")
            main.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        async with Service(settings, site, clock or RealClock()) as service:
            app = create_app(settings, runtime=service, store=service.store)
            freeze_startup_heap()
            await serve_web(app, settings.http_host, settings.http_port)
    except asyncio.CancelledError:
        if not terminated or main is None:
            raise
        main.uncancel()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def production_settings() -> Settings:
    """The environment's settings, refusing the demo mode (:class:`ConfigError`)."""
    from scheduler.settings import load_settings

    settings = load_settings()
    if settings.mode == "demo":
        raise ConfigError("WALDSTADT_MODE", "demo mode only through 'waldstadt demo'")
    return settings


def run_command(
    site: Annotated[Path, typer.Option("--site", help="the site file (YAML)")],
) -> None:
    """Run the service for a site against its real devices, broker and database."""
    from scheduler.observability import configure_logging
    from scheduler.site import load_site

    try:
        settings = production_settings()
    except ConfigError as exc:
        typer.echo(_environment_error(exc), err=True)
        raise typer.Exit(1) from exc
    try:
        parsed = load_site(site)
    except ConfigError as exc:
        typer.echo(format_config_error(exc, site), err=True)
        raise typer.Exit(1) from exc
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_site(settings, parsed))
        typer.echo("stopped")
    except KeyboardInterrupt:
        typer.echo("stopped")
    except ConfigError as exc:
        where = _environment_error(exc) if exc.field.startswith("WALDSTADT_") else None
        typer.echo(where or format_config_error(exc, site), err=True)
        raise typer.Exit(1) from exc
    except WaldstadtError as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(1) from exc


def demo_command(
    speed: Annotated[
        float, typer.Option(help="simulated seconds per real second", min=0.01)
    ] = 144.0,
    town: Annotated[
        Path | None, typer.Option(help="town file (default: sims/default_town.yaml)")
    ] = None,
    broker: Annotated[
        str | None, typer.Option(help="mqtt://[user:pw@]host:port of a broker; default: its own")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many real seconds")
    ] = None,
    port: Annotated[int, typer.Option(help="port of the web app", min=1, max=65535)] = 8000,
    database: Annotated[
        str | None,
        typer.Option(
            help="database URL; default: a fresh SQLite file in a temporary folder, "
            "removed when the demo stops"
        ),
    ] = None,
) -> None:
    """The simulated town, the controller, SQLite and the web app, all on this machine."""
    # The demo is the one place where production entry points start simulators.
    from app.demo import run_demo

    try:
        asyncio.run(
            run_demo(
                speed=speed,
                town=town,
                broker_url=broker,
                duration_s=duration,
                port=port,
                database_url=database,
                freeze_heap=True,
            )
        )
    except KeyboardInterrupt:
        typer.echo("stopped")
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``demo`` to ``app``."""
    app.command("run")(run_command)
    app.command("demo")(demo_command)


__all__ = ["register", "run_site"]
