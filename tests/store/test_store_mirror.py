"""The InfluxDB mirror against a real server speaking the InfluxDB v2 write API: Debian's
``victoria-metrics``, started per test on a free port and stopped to play "server down" (F6).

The binary is installed by ``.ci/run``; the tests install nothing themselves.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from kernel.readings import Reading
from store import MirrorConfig, MirrorUnavailable, Store, StoreSettings
from tests.store.conftest import T0

BINARY = shutil.which("victoria-metrics") or shutil.which("victoria-metrics-prod")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VictoriaMetrics:
    """One server process; ``start``/``stop`` keep the same port and data directory."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert BINARY is not None
        self.process = subprocess.Popen(
            [
                BINARY,
                f"-storageDataPath={self.data_dir}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-search.latencyOffset=1s",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {self.process.returncode}")
            time.sleep(0.1)
        raise RuntimeError("victoria-metrics did not become healthy within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None

    def values(self) -> list[float]:
        """Every ``reading_value`` sample of device pv-1, in time order."""
        httpx.post(f"{self.url}/internal/force_flush", timeout=10)
        response = httpx.post(
            f"{self.url}/api/v1/export",
            data={"match[]": '{__name__="reading_value",device_id="pv-1"}', "start": "0"},
            timeout=10,
        )
        response.raise_for_status()
        out: list[tuple[int, float]] = []
        for line in response.text.splitlines():
            series = json.loads(line)
            out.extend(zip(series["timestamps"], series["values"], strict=True))
        return [v for _, v in sorted(out)]


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    if BINARY is None:
        pytest.fail("victoria-metrics is not installed (.ci/run installs it)")
    server = VictoriaMetrics(free_port(), tmp_path / "vm-data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def mirrored_store(store_url: str) -> AsyncIterator[Store]:
    async with Store(store_url, settings=SETTINGS) as store:
        yield store


SETTINGS = StoreSettings(mirror_readings=True, outbox_capacity=50)


def readings(start: int, n: int) -> list[Reading]:
    return [
        Reading("pv-1", "power_w", float(i), "W", T0 + timedelta(seconds=i))
        for i in range(start, start + n)
    ]


async def eventually_values(server: VictoriaMetrics, expected: list[float]) -> list[float]:
    """Samples become searchable after the latency offset; poll, do not sleep blindly."""
    deadline = time.monotonic() + 30
    values: list[float] = []
    while time.monotonic() < deadline:
        values = await asyncio.to_thread(server.values)
        if values == expected:
            return values
        await asyncio.sleep(0.25)
    return values


async def test_outbox_grows_while_down_drops_beyond_limit_and_drains_in_order(
    store_url: str, victoria: VictoriaMetrics
) -> None:
    config = MirrorConfig(url=victoria.url, bucket="waldstadt", batch_lines=10, timeout_s=3)
    async with Store(store_url, settings=SETTINGS) as store:
        # server down (never started): the outbox grows and keeps everything up to its limit
        await store.readings.write(readings(0, 30), now=T0)
        async with store.mirror(config) as mirror:
            with pytest.raises(MirrorUnavailable):
                await mirror.drain_once()
        assert (await store.outbox.stats()).pending == 30
        # more while still down: beyond 50 lines the oldest are dropped, and counted
        await store.readings.write(readings(30, 50), now=T0)
        stats = await store.outbox.stats()
        assert (stats.pending, stats.dropped, stats.sent) == (50, 30, 0)

    # the Store restarts (say the process was redeployed): the outbox is still there
    async with Store(store_url, settings=SETTINGS) as reopened:
        stats = await reopened.outbox.stats()
        assert (stats.pending, stats.dropped) == (50, 30)

        await asyncio.to_thread(victoria.start)
        async with reopened.mirror(config) as mirror:
            assert await mirror.drain_once() == 10  # the oldest batch first
            assert await eventually_values(victoria, [float(i) for i in range(30, 40)]) == [
                float(i) for i in range(30, 40)
            ]
            # down again mid-drain: the rest stays queued, first in line
            await asyncio.to_thread(victoria.stop)
            with pytest.raises(MirrorUnavailable):
                await mirror.drain_once()
            assert (await reopened.outbox.stats()).pending == 40
            await asyncio.to_thread(victoria.start)
            assert await mirror.drain() == 40
        stats = await reopened.outbox.stats()
        assert (stats.pending, stats.dropped, stats.sent) == (0, 30, 50)
        expected = [float(i) for i in range(30, 80)]
        assert await eventually_values(victoria, expected) == expected


async def test_run_loop_drains_by_itself_when_the_server_comes_back(
    mirrored_store: Store, victoria: VictoriaMetrics
) -> None:
    config = MirrorConfig(
        url=victoria.url, bucket="waldstadt", timeout_s=2, retry_min_s=0.05, retry_max_s=0.2
    )
    store = mirrored_store
    await store.readings.write(readings(0, 20), now=T0)
    async with store.mirror(config) as mirror:
        task = asyncio.create_task(mirror.run(idle_s=0.05), name="test.mirror")
        try:
            await asyncio.sleep(0.5)
            assert (await store.outbox.stats()).pending == 20  # nothing to send to yet
            await asyncio.to_thread(victoria.start)
            for _ in range(300):  # up to ~30 s
                if (await store.outbox.stats()).pending == 0:
                    break
                await asyncio.sleep(0.1)
            assert (await store.outbox.stats()).pending == 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    expected = [float(i) for i in range(20)]
    assert await eventually_values(victoria, expected) == expected
