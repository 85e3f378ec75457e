"""A login storm beside a running service: 20 concurrent logins with the production argon2
cost must neither stall ``/health`` nor make a device of the cycle time out.

The town (Modbus devices on loopback, streetlights over MQTT), the service (its cycle every
second of a real-speed clock) and the web app on a real uvicorn share this process's event
loop, as in ``waldstadt run``; the load comes from a process of its own
(:mod:`tests.api.storm_client`). Issue 13 measured the loop hashing passwords: 4 logins
pushed ``/health`` p50 from 4 to 508 ms and one cycle marked 116 of 146 devices timed out.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.auth import default_hasher
from api.limits import RateLimit, RateLimiter
from kernel.clock import SimClock
from scheduler.cycle import CycleReport
from tests.api.conftest import serve_app
from tests.e2e.conftest import running_town

ROOT = Path(__file__).resolve().parents[2]
LOGINS = 20


@dataclass
class Cycles:
    """The cycles' reports as they come: when (loop time) and which devices timed out."""

    seen: list[tuple[float, frozenset[str], int]] = field(default_factory=list)

    async def __call__(self, report: CycleReport) -> None:
        timed_out = frozenset(
            d for d, why in report.snapshot.errors.items() if "timeout" in why.lower()
        )
        now = asyncio.get_running_loop().time()
        self.seen.append((now, timed_out, len(report.snapshot.readings)))

    def between(self, start: float, end: float) -> list[tuple[float, frozenset[str], int]]:
        return [c for c in self.seen if start <= c[0] <= end]


async def load(port: int, logins: int, probe_only_s: float = 0.0) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.api.storm_client", f"http://127.0.0.1:{port}",
        str(logins), str(probe_only_s),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0
    result: dict[str, Any] = json.loads(out)
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@pytest.mark.slow
async def test_20_concurrent_logins_stall_neither_health_nor_the_cycle(
    restartable_broker: Any, tmp_path: Path
) -> None:
    clock = SimClock(datetime(2026, 6, 22, 8, 2, tzinfo=UTC), speed=1.0)
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'storm.db'}"
    async with running_town(clock, db_url, restartable_broker, poll_s=1.0) as run:
        service = run.service
        cycles = Cycles()
        service.controller.after.append(cycles)
        app = create_app(run.settings, runtime=service, store=service.store)
        state = app.state.waldstadt
        state.hasher = default_hasher()  # the production cost (~0.15-0.3 s a check)
        # every login reaches the hashing pool: the worst case (one address would be cut
        # off after 10 by its own limit)
        state.login_limiter = RateLimiter(RateLimit(1000, 1000))
        async with serve_app(app) as port:
            await service.controller.wait_for_cycle(30)
            await service.controller.wait_for_cycle(30)
            loop = asyncio.get_running_loop()
            quiet = await load(port, 0, probe_only_s=3.0)
            start = loop.time()
            result = await load(port, LOGINS)
            end = loop.time()
            await service.controller.wait_for_cycle(30)
    codes: list[int] = result["codes"]
    health: list[float] = result["health_ms"]
    during = cycles.between(start, end + 1.0)
    timed_out = sorted({d for _, devices, _ in during for d in devices})
    p50, p99 = statistics.median(health), percentile(health, 99)
    print(
        f"\nlogin storm: {LOGINS} logins in {result['elapsed_s']:.2f} s, "
        f"{codes.count(401)} refused as wrong, {codes.count(429)} as busy; "
        f"/health p50 {p50:.1f} ms p99 {p99:.1f} ms max {max(health):.1f} ms over "
        f"{len(health)} probes (quiet: p50 {statistics.median(quiet['health_ms']):.1f} ms, "
        f"p99 {percentile(quiet['health_ms'], 99):.1f} ms); {len(during)} cycles during the "
        f"storm, devices timed out: {len(timed_out)} {timed_out}"
    )
    assert sorted(set(codes)) == [401]  # every login was checked, none was lost
    assert len(health) >= 50
    assert p99 < 50.0
    assert len(during) >= 2  # the cycle ran while the passwords were hashed ...
    assert timed_out == []  # ... and no device ran out of its time
