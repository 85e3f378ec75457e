"""Ingest (F5): MQTT → validated → committed → acknowledged, on SQLite and PostgreSQL.

The kill test runs the real ``waldstadt ingest`` command in a child process and kills it with
SIGKILL in the middle of a stream: every reading must end up stored exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from kernel.clock import RealClock
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig
from protocols.mqtt.telemetry import encode_telemetry, telemetry_topic
from scheduler.ingest import TelemetryIngest
from store import Store
from store.writer import ReadingWriter

#: an hour ago: ``waldstadt ingest`` quarantines readings outside a window around its clock's
#: now (``site.plausibility``), and it runs on the real clock
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
ROOT = Path(__file__).resolve().parents[2]


async def publish_stream(
    host: str, port: int, prefix: str, device: str, n: int, *, bad_every: int = 0, start: int = 0
) -> None:
    async with aiomqtt.Client(host, port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as client:
        topic = telemetry_topic(device, prefix)
        for i in range(start, start + n):
            payload = encode_telemetry(
                T0 + timedelta(seconds=i), {"power_w": float(i), "import_energy_wh": 1000.0 + i}
            )
            await client.publish(topic, payload, qos=1)
            if bad_every and i % bad_every == 0:
                await client.publish(topic, b'{"ts": "not a time", "values": {}}', qos=1)


async def wait_for_count(store: Store, device: str, expected: int, timeout_s: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    count = await store.readings.count(device)
    while count < expected and loop.time() < deadline:
        await asyncio.sleep(0.2)
        count = await store.readings.count(device)
    return count


async def test_stream_with_malformed_payloads_is_committed_then_acknowledged(
    store_url: str, mqtt_broker: Any, unique: str
) -> None:
    device = f"meter-{unique[-8:]}"
    config = BusConfig(
        client_id=f"ingest-{unique[-12:]}",
        host=mqtt_broker.host,
        port=mqtt_broker.port,
        manual_ack=True,
    )
    async with (
        Store(store_url) as store,
        ReadingWriter(store.readings, now=RealClock().now) as writer,
        Bus(config) as bus,
    ):
        ingest = TelemetryIngest(bus, writer, prefix=unique)
        await ingest.start()
        await bus.wait_connected()
        await publish_stream(mqtt_broker.host, mqtt_broker.port, unique, device, 1000, bad_every=10)
        count = await wait_for_count(store, device, 2000, 60)
        await ingest.drain()
        assert count == 2000
        assert ingest.committed == ingest.messages == 1000
        assert sum(bus.stats.malformed.values()) == 100
        got = await store.readings.between(device, "power_w", T0, T0 + timedelta(hours=1))
        assert [r.value for r in got] == [float(i) for i in range(1000)]


def _ingest_process(env: dict[str, str], prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", "--prefix", prefix],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
async def test_killed_ingest_process_loses_nothing_and_stores_nothing_twice(
    store_url: str, restartable_broker: Any, unique: str
) -> None:
    device = f"meter-{unique[-8:]}"
    host, port = restartable_broker.host, restartable_broker.port
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALDSTADT_")}
    env.update(
        WALDSTADT_MODE="demo",
        WALDSTADT_DATABASE_URL=store_url,
        WALDSTADT_BROKER_URL=f"mqtt://{host}:{port}",
        WALDSTADT_BROKER_CLIENT_ID=f"ingest-{unique[-12:]}",
        WALDSTADT_LOG_LEVEL="WARNING",
    )
    total = 3000
    async with Store(store_url) as store:
        proc = _ingest_process(env, unique)
        try:
            # the session exists once the process has subscribed: offer reading 0 until it
            # is stored (the repeats are redeliveries the store must ignore)
            for _ in range(120):
                await publish_stream(host, port, unique, device, 1)
                if await wait_for_count(store, device, 2, 0.5) == 2:
                    break
            assert await store.readings.count(device) == 2
            publisher = asyncio.create_task(
                publish_stream(host, port, unique, device, total - 1, start=1)
            )
            # kill it hard in the middle of the stream
            await wait_for_count(store, device, 600, 60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            mid = await store.readings.count(device)
            assert mid < 2 * total, "the kill came too late to prove anything"
            await publisher
            proc = _ingest_process(env, unique)
            count = await wait_for_count(store, device, 2 * total, 90)
        finally:
            proc.kill()
            proc.wait(10)
        assert count == 2 * total
        got = await store.readings.between(device, "power_w", T0, T0 + timedelta(hours=2))
        assert [r.value for r in got] == [float(i) for i in range(total)]
