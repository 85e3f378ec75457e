"""The simulated town in a process of its own, on the same clock as the controller.

The town and the controller each get a core (a fast demo clock keeps both busy). Their
clocks share one :class:`~kernel.clock.SharedRate`, so when the demo slows its clock because
the machine cannot keep up, the town's simulated time slows with it, at the same instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self

from kernel.clock import SharedRate, SimClock
from sims.modbus.fleet import Endpoint
from sims.town import SimTown, TownLogins, load_town


@dataclass(frozen=True, slots=True)
class TownInfo:
    """Where the running town answers (sent by the town's process)."""

    host: str
    mqtt_port: int
    broker: str
    endpoints: Mapping[str, Endpoint]
    gateways: int
    lights: int
    sensors: int


@dataclass(frozen=True, slots=True)
class TownBroker:
    """The broker the town connects to, and as whom (:mod:`app.demo.broker`)."""

    host: str
    port: int
    description: str
    logins: TownLogins


def _town_child(conn: Connection, town_path: str, broker: TownBroker, rate: SharedRate) -> None:
    """The town's process: loads, says so, then starts every simulator on the clock the
    parent starts, and runs until the parent says stop. The credentials come through the
    process's pipe, never its command line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (Ctrl-C goes to both)
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        cfg = load_town(town_path)
        conn.send("loaded")
        start = await asyncio.to_thread(conn.recv)
        assert isinstance(start, datetime)
        clock = SimClock(start, rate=rate)  # the parent's clock: same start, same rate
        host, port = broker.host, broker.port
        async with SimTown(cfg, clock, host, port, logins=broker.logins) as sim:
            conn.send(
                TownInfo(host, port, broker.description, dict(sim.modbus.endpoints),
                         len(sim.modbus.gateways), len(sim.light_ids), len(sim.sensors))
            )  # fmt: skip
            await asyncio.to_thread(conn.recv)  # any message: stop

    asyncio.run(main())


class TownProcess:
    """``async with TownProcess(path, broker, speed) as town: clock, info = await
    town.start(start)`` — the process loads first; the clock starts after that, so that the
    interpreter's start does not eat simulated time."""

    def __init__(
        self, town_path: Path, broker: TownBroker, speed: float, start_timeout_s: float = 60
    ) -> None:
        self._timeout_s = start_timeout_s
        self._rate = SharedRate(speed)
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_town_child,
            args=(child, str(town_path), broker, self._rate),
            name="waldstadt demo town",
            daemon=True,
        )

    async def _receive(self, what: str) -> object:
        try:
            if await asyncio.to_thread(self._conn.poll, self._timeout_s):
                return self._conn.recv()
        except EOFError:
            raise RuntimeError(
                f"the demo town's process ended before it could {what} "
                f"(exit code {self._proc.exitcode}); its error is printed above"
            ) from None
        raise RuntimeError(f"the demo town did not {what} within {self._timeout_s:g} s")

    async def __aenter__(self) -> Self:
        self._proc.start()
        try:
            await self._receive("load")
        except BaseException:
            await self._stop()
            raise
        return self

    async def start(self, start: datetime) -> tuple[SimClock, TownInfo]:
        """Start the shared clock at ``start`` now, and the town on it."""
        _, _, speed = self._rate.read()
        self._rate.write(0.0, time.monotonic(), speed)  # simulated time begins now
        clock = SimClock(start, speed, rate=self._rate)
        self._conn.send(start)
        info = await self._receive("start")
        assert isinstance(info, TownInfo)
        return clock, info

    async def __aexit__(self, *_exc: object) -> None:
        await self._stop()

    async def _stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        await asyncio.to_thread(self._proc.join, 15)
        if self._proc.is_alive():
            self._proc.terminate()
            await asyncio.to_thread(self._proc.join, 5)


__all__ = ["TownBroker", "TownInfo", "TownProcess"]
