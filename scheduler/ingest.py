"""Ingest: MQTT telemetry → validated readings → committed → acknowledged (F5).

Messages arrive with manual acknowledgement. Each message's readings go to the
:class:`~store.writer.ReadingWriter`, which commits what queued up in one transaction; the
message is acknowledged only when its batch has committed. A process killed in between loses
nothing: the broker redelivers what was never acknowledged, and the store ignores readings it
already has (unique on device, channel and time), so a redelivery is harmless.

Malformed payloads are counted and logged by the bus with the topic and the field, and never
stop the stream. A failed commit (database away) is retried with backoff; the message stays
unacknowledged until its readings are stored.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from protocols.clock import RealClock
from protocols.errors import ConfigError
from protocols.model import Reading
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig
from protocols.mqtt.inbound import Inbound
from protocols.mqtt.telemetry import (
    DEFAULT_PREFIX,
    TelemetryPayload,
    subscribe_telemetry,
    telemetry_filter,
)
from scheduler.settings import Settings
from store import Store
from store.readings import WriteResult
from store.writer import ReadingWriter

log = logging.getLogger(__name__)


class TelemetryIngest:
    """Subscribe with ``await ingest.start()``; stats in :attr:`committed` / :attr:`retries`.

    ``max_in_flight`` bounds the messages received but not yet committed: beyond it the
    receive loop waits, so the broker holds the rest (back-pressure instead of memory)."""

    def __init__(
        self,
        bus: Bus,
        writer: ReadingWriter,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_in_flight: int = 20_000,
        retry_cap_s: float = 30.0,
    ) -> None:
        self._bus = bus
        self._writer = writer
        self._prefix = prefix
        self._slots = asyncio.Semaphore(max_in_flight)
        self._retry_cap_s = retry_cap_s
        self._retry_tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()
        self.messages = 0
        self.committed = 0
        self.inserted = 0
        self.retries = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        await subscribe_telemetry(self._bus, self._sink, prefix=self._prefix, ack="manual")

    async def _sink(self, readings: list[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        self.messages += 1
        self._idle.clear()
        await self._slots.acquire()
        future = await self._writer.submit(readings)
        future.add_done_callback(lambda f: self._committed(f, readings, inbound))

    def _committed(
        self,
        future: asyncio.Future[WriteResult],
        readings: Sequence[Reading],
        inbound: Inbound[TelemetryPayload],
    ) -> None:
        if future.cancelled():
            self._slots.release()
            return
        exc = future.exception()
        if exc is None:
            self._done(inbound)
            self._slots.release()
            return
        log.warning("commit of %s failed (%s); retrying, not acknowledged", inbound.topic, exc)
        task = asyncio.get_running_loop().create_task(
            self._retry(readings, inbound), name=f"ingest retry {inbound.topic}"
        )
        self._retry_tasks.add(task)
        task.add_done_callback(self._retry_tasks.discard)

    async def _retry(self, readings: Sequence[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        delay = 0.5
        try:
            while True:
                await asyncio.sleep(self._rng.uniform(delay / 2, delay))
                self.retries += 1
                try:
                    await self._writer.write(readings)
                except Exception as exc:  # noqa: BLE001 - any store error: keep trying, stay unacked
                    log.debug("retry of %s failed: %s", inbound.topic, exc)
                    delay = min(self._retry_cap_s, delay * 2)
                    continue
                self._done(inbound)
                return
        finally:
            self._slots.release()

    def _done(self, inbound: Inbound[TelemetryPayload]) -> None:
        self.committed += 1
        inbound.ack()
        if self.committed == self.messages:
            self._idle.set()

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until everything received so far is committed (for shutdown and tests)."""
        async with asyncio.timeout(timeout_s):
            await self._idle.wait()


async def run_ingest(settings: Settings, *, prefix: str = DEFAULT_PREFIX) -> None:
    """Run ingestion until cancelled: the ``waldstadt ingest`` command.

    The client id comes from the settings and must be stable: the broker keeps the persistent
    session (and every unacknowledged message) under it while the process is away."""
    hp = settings.broker_host_port
    if hp is None:
        raise ConfigError("WALDSTADT_BROKER_URL", "ingest needs a broker", "environment")
    password = settings.broker_password.get_secret_value() if settings.broker_password else None
    config = BusConfig(
        client_id=settings.broker_client_id,
        host=hp[0],
        port=hp[1],
        username=settings.broker_username,
        password=password,
        manual_ack=True,
    )
    clock = RealClock()
    async with (
        Store(settings.database_url) as store,
        ReadingWriter(store.readings, now=clock.now) as writer,
        Bus(config) as bus,
    ):
        ingest = TelemetryIngest(bus, writer, prefix=prefix)
        await ingest.start()
        log.info("ingesting %s into %s", telemetry_filter(prefix), store.url.split("@")[-1])
        await asyncio.Event().wait()


__all__ = ["TelemetryIngest", "run_ingest"]
