"""Ingest: MQTT telemetry → validated readings → committed → acknowledged (F5).

Messages arrive with manual acknowledgement. Each message's readings go to the
:class:`~store.writer.ReadingWriter`, which commits what queued up in one transaction; the
message is acknowledged only when its batch has committed. A process killed in between loses
nothing: the broker redelivers what was never acknowledged, and the store ignores readings it
already has (unique on device, channel and time), so a redelivery is harmless.

Malformed payloads are counted and logged by the bus with the topic and the field, and never
stop the stream. With a :class:`~scheduler.plausibility.ReadingGate` the readings are checked
before they are queued: implausible ones are quarantined (kept apart, counted, alarmed once
per device and reason) and the rest stored; a message whose readings were all quarantined is
acknowledged once the quarantine is written. A failed commit (database away) is retried with
backoff; the message stays unacknowledged until its readings are stored.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime

from kernel.clock import RealClock
from kernel.errors import ConfigError
from kernel.readings import Reading
from protocols.mqtt.bus import Bus
from protocols.mqtt.inbound import Inbound
from protocols.mqtt.telemetry import (
    DEFAULT_PREFIX,
    TelemetryPayload,
    subscribe_telemetry,
    telemetry_filter,
)
from scheduler.broker_connection import bus_config
from scheduler.observability import Metrics
from scheduler.plausibility import SOURCE_TELEMETRY, ReadingGate
from scheduler.settings import Settings
from scheduler.site import Site
from store import Store
from store.errors import StoreUnavailable
from store.readings import WriteResult
from store.writer import ReadingWriter

log = logging.getLogger(__name__)

#: Group commit on the ingest path: wait up to this long for company after the first message
#: of a batch. Without it a fast database commits nearly every message alone (measured on
#: PostgreSQL: 1.4 messages per transaction), and the per-transaction cost dominates.
INGEST_MAX_DELAY_S = 0.005
#: ... but commit as soon as this many messages are waiting: Mosquitto sends at most
#: ``max_inflight_messages`` (default 20) unacknowledged messages, so waiting for more than
#: that only adds the delay.
INGEST_FLUSH_CALLS = 20


def ingest_writer(store: Store, now: Callable[[], datetime]) -> ReadingWriter:
    """The group-commit writer as the ingest path runs it (``async with`` it)."""
    return ReadingWriter(
        store.readings, now=now, max_delay_s=INGEST_MAX_DELAY_S, flush_calls=INGEST_FLUSH_CALLS
    )


class TelemetryIngest:
    """Subscribe with ``await ingest.start()``; stats in :attr:`committed` / :attr:`retries`.

    ``max_in_flight`` bounds the messages received but not yet committed: beyond it the
    receive loop waits, so the broker holds the rest (back-pressure instead of memory)."""

    def __init__(
        self,
        bus: Bus,
        writer: ReadingWriter,
        *,
        gate: ReadingGate | None = None,
        prefix: str = DEFAULT_PREFIX,
        max_in_flight: int = 20_000,
        retry_cap_s: float = 30.0,
    ) -> None:
        self._bus = bus
        self._writer = writer
        self._gate = gate
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
        limits = None if self._gate is None else self._gate.limits
        await subscribe_telemetry(
            self._bus, self._sink, prefix=self._prefix, ack="manual", limits=limits
        )

    async def _sink(self, readings: list[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        self.messages += 1
        self._idle.clear()
        if self._gate is not None:
            readings = await self._admit(self._gate, readings, inbound)
            if not readings:
                self._done(inbound)
                return
        await self._slots.acquire()

        def committed(outcome: WriteResult | Exception) -> None:
            self._committed(outcome, readings, inbound)

        await self._writer.submit_callback(readings, committed)

    async def _admit(
        self, gate: ReadingGate, readings: list[Reading], inbound: Inbound[TelemetryPayload]
    ) -> list[Reading]:
        """The plausible readings; while the database cannot be read the message is held
        (unacknowledged, the bus waits: back-pressure) and the check tried again."""
        delay = 0.5
        while True:
            try:
                return await gate.admit(readings, SOURCE_TELEMETRY)
            except StoreUnavailable as exc:
                level = logging.WARNING if delay == 0.5 else logging.DEBUG
                log.log(level, "checking %s needs the database (%s); retrying", inbound.topic, exc)
                self.retries += 1
                await asyncio.sleep(self._rng.uniform(delay / 2, delay))
                delay = min(self._retry_cap_s, delay * 2)

    def _committed(
        self,
        outcome: WriteResult | Exception,
        readings: Sequence[Reading],
        inbound: Inbound[TelemetryPayload],
    ) -> None:
        if not isinstance(outcome, Exception):
            self._done(inbound)
            self._slots.release()
            return
        exc = outcome
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


async def run_ingest(
    settings: Settings, *, prefix: str = DEFAULT_PREFIX, site: Site | None = None
) -> None:
    """Run ingestion until cancelled: the ``waldstadt ingest`` command.

    The client id comes from the settings and must be stable: the broker keeps the persistent
    session (and every unacknowledged message) under it while the process is away. Readings
    pass the plausibility checks; without ``site`` only those that need no site file (the
    time window, counters that fall), with a warning at start."""
    hp = settings.broker_host_port
    if hp is None:
        raise ConfigError("WALDSTADT_BROKER_URL", "ingest needs a broker", "environment")
    config = bus_config(settings)  # TLS for mqtts://
    clock = RealClock()
    async with (
        Store(settings.database_url) as store,
        ingest_writer(store, clock.now) as writer,
        Bus(config) as bus,
    ):
        metrics = Metrics()
        metrics.count_rejections(bus.malformed)
        gate = ReadingGate(store, clock, metrics, site)
        if site is None:
            log.warning("no site file: devices, channels and ratings of telemetry not checked")
        ingest = TelemetryIngest(bus, writer, gate=gate, prefix=prefix)
        await ingest.start()
        log.info("ingesting %s into %s", telemetry_filter(prefix), store.url.split("@")[-1])
        await asyncio.Event().wait()


__all__ = ["TelemetryIngest", "ingest_writer", "run_ingest"]
