"""``waldstadt check-site PATH``: validate a site file, then try each device's connection.

Exit codes: 0 all good; 1 the file is not valid (one error, ``<file>:<line>: <key>: <reason>``);
2 the file is valid but a device did not answer (or answered as something else than its role
needs).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from kernel.errors import ConfigError

_WHERE = re.compile(r"^(?P<file>.*), line (?P<line>\d+)$")


def format_config_error(exc: ConfigError, path: Path) -> str:
    """``<file>:<line>: <key>: <reason>`` (the compiler convention editors jump to)."""
    match = _WHERE.match(exc.where or "")
    location = f"{path}:{match['line']}" if match else str(path)
    return f"{location}: {exc.field}: {exc.reason}"


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """The check reports each device itself; the runtime's up/down log lines would repeat it."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def register(app: typer.Typer) -> None:
    """Add ``check-site`` to ``app``."""

    @app.command("check-site")
    def check_site_command(
        path: Annotated[Path, typer.Argument(help="the site file (YAML)")],
        connect: Annotated[
            bool, typer.Option("--connect/--no-connect", help="try each device's connection")
        ] = True,
        timeout: Annotated[
            float, typer.Option(help="seconds each device may take to answer", min=0.1)
        ] = 2.0,
    ) -> None:
        """Validate a site file and try each device's connection (one read each)."""
        from kernel.clock import RealClock
        from scheduler.site import load_site
        from scheduler.site_check import check_site, summarize

        try:
            site = load_site(path)
        except ConfigError as exc:
            typer.echo(format_config_error(exc, path), err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"{path.name}: OK — {summarize(site).line()}")
        if not connect or not site.devices:
            return
        with _quiet("protocols.modbus.availability"):
            report = asyncio.run(check_site(site, RealClock(), timeout_s=timeout))
        rows = [("device", "driver", "address", "status", "time", "detail")]
        rows += [
            (d.name, d.driver, d.address, d.status, f"{d.elapsed_s:.2f} s", d.detail)
            for d in report.devices
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
            typer.echo("  ".join([*cells, row[5]]).rstrip())
        failed = report.failed
        if failed:
            typer.echo(
                f"{len(failed)} of {len(report.devices)} devices not OK: "
                + ", ".join(d.name for d in failed),
                err=True,
            )
            raise typer.Exit(2)
        typer.echo(f"all {len(report.devices)} devices answered")
