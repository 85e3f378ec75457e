"""Drains the outbox into a server that speaks the InfluxDB v2 write API (InfluxDB,
VictoriaMetrics, …), oldest line first.

A batch is removed from the outbox only after the server accepted it, so a crash between
the two resends that batch: the mirror may see a line twice (a point with the same series and
timestamp simply overwrites), but never out of order and never not at all — unless the
outbox overflowed meanwhile, which :class:`~store.outbox.OutboxStats` counts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from store.errors import MirrorUnavailable
from store.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    """Where to mirror to. ``timeout_s`` bounds one HTTP write, in s."""

    url: str
    bucket: str
    org: str = "waldstadt"
    token: str = ""
    batch_lines: int = 5_000
    timeout_s: float = 5.0
    retry_min_s: float = 1.0
    retry_max_s: float = 60.0


class InfluxMirror:
    """Sends outbox batches with influxdb-client's synchronous write API, in a worker thread."""

    def __init__(self, outbox: Outbox, config: MirrorConfig) -> None:
        self._outbox = outbox
        self.config = config
        self._client = InfluxDBClient(
            url=config.url,
            token=config.token,
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> InfluxMirror:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, lines: list[str]) -> None:
        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=lines,  # line protocol with ns timestamps (the default precision)
            )
        except Exception as exc:
            raise MirrorUnavailable(self.config.url, f"{type(exc).__name__}: {exc}") from exc

    async def drain_once(self) -> int:
        """Send the oldest batch; returns the lines sent (0: outbox empty).

        Raises :class:`MirrorUnavailable` when the server does not accept it; the batch
        then stays in the outbox, first in line.
        """
        batch = await self._outbox.peek(self.config.batch_lines)
        if batch is None:
            return 0
        await asyncio.to_thread(self._send, batch.lines)
        await self._outbox.remove(batch)
        return len(batch.lines)

    async def drain(self, max_batches: int | None = None) -> int:
        """Send batches until the outbox is empty (or ``max_batches``); returns lines sent."""
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            sent = await self.drain_once()
            if sent == 0:
                break
            total += sent
            batches += 1
        return total

    async def run(
        self,
        idle_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Drain forever: poll every ``idle_s`` s; while the server is away, retry with
        capped, jittered exponential backoff. Log one line when it goes and one when it is
        back. Cancel the task to stop."""
        delay_s = self.config.retry_min_s
        down = False
        while True:
            try:
                await self.drain()
            except MirrorUnavailable as exc:
                if not down:
                    log.warning("mirror down, outbox keeps the lines: %s", exc)
                    down = True
                await sleep(delay_s * random.uniform(0.5, 1.0))
                delay_s = min(delay_s * 2, self.config.retry_max_s)
                continue
            if down:
                log.info("mirror %s back, outbox drained", self.config.url)
                down = False
            delay_s = self.config.retry_min_s
            await sleep(idle_s)
