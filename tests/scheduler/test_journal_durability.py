"""The command journal never drops a record while the database is locked (issue 13 item 10).

The running service on real components (Modbus simulators, a broker, SQLite or PostgreSQL):
its cycle writes commands every half real second while another connection holds the
database's write lock for 45 s -- on SQLite an exclusive transaction (the service's writes
wait out their 30 s busy timeout and fail), on PostgreSQL ``LOCK TABLE commands IN EXCLUSIVE
MODE`` (its writes wait without an answer). Meanwhile ``/ready`` is degraded with the
journal's reason; afterwards it is ready again and every command the cycle applied is in the
command table, once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.service import Service
from kernel.clock import SimClock
from kernel.commands import Command, CommandKind, CommandStatus
from scheduler.cycle import CycleReport
from scheduler.snapshot import Snapshot
from sims.modbus.fleet import ModbusFleet
from store.schema import commands
from tests.conftest import BrokerAddress
from tests.scheduler.test_service import NOON, settings_for, small_fleet, small_site

LOCK_S = 45.0
JOURNALED = {CommandStatus.APPLIED, CommandStatus.FAILED, CommandStatus.UNSUPPORTED}


@dataclass
class Setpoints:
    """A decider that asks for a new power limit and battery setpoint every cycle."""

    issued: int = 0
    name: str = "test-setpoints"

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        n = self.issued
        self.issued += 1
        expires = snapshot.at + timedelta(minutes=20)
        return [
            Command(f"lock-{n}-school", "school-pv", CommandKind.POWER_LIMIT_PCT,
                    60.0 + n % 30, expires, "test", revert_s=120),
            Command(f"lock-{n}-h1pv", "h1-pv", CommandKind.POWER_LIMIT_PCT,
                    50.0 + n % 40, expires, "test", revert_s=120),
            Command(f"lock-{n}-bat", "h1-battery", CommandKind.BATTERY_POWER_W,
                    float(100 * (n % 20)), expires, "test", revert_s=120),
            Command(f"lock-{n}-gone", "no-such-device", CommandKind.POWER_LIMIT_PCT,
                    10.0, expires, "test"),  # journaled as failed
        ]  # fmt: skip


@dataclass
class Journaled:
    """Every result of every cycle that the journal must hold, and when it came."""

    ids: dict[str, float] = field(default_factory=dict)

    async def __call__(self, report: CycleReport) -> None:
        for r in report.results:
            if r.status in JOURNALED and r.command.source == "test":
                self.ids.setdefault(r.command.command_id, time.monotonic())


def buffered_gauge(service: Service) -> float:
    for line in service.metrics.render().decode().splitlines():
        if line.startswith("waldstadt_journal_buffered_outcomes "):
            return float(line.split()[1])
    raise AssertionError("no waldstadt_journal_buffered_outcomes in /metrics")


@pytest.fixture
async def fleet() -> AsyncIterator[ModbusFleet]:
    async with small_fleet(SimClock(NOON, speed=60)) as f:
        yield f


@asynccontextmanager
async def write_lock(db_url: str) -> AsyncIterator[None]:
    """Another connection holds the database's write lock (for the commands table)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    pg = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                               database=url.database)  # fmt: skip
    try:
        tx = pg.transaction()
        await tx.start()
        await pg.execute("LOCK TABLE commands IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            await tx.commit()
    finally:
        await pg.close()


@pytest.mark.slow
async def test_database_locked_45_s_loses_no_journal_record_and_ready_says_why(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, db_url: str, tmp_path: Path
) -> None:
    site = small_site(fleet, poll_s=30, revert_s=240)  # a cycle every 0.5 real s at 60x
    settings = settings_for(db_url, mqtt_broker, unique)
    decider, journaled = Setpoints(), Journaled()
    async with Service(settings, site, fleet.clock) as service:
        service.controller.cycle.deciders.append(decider)
        service.controller.after.append(journaled)
        await service.wait_for_cycle(timeout_s=10)
        await service.wait_for_cycle(timeout_s=10)
        assert service.journal is not None
        await service.journal.flush(timeout_s=20)
        assert (await service.readiness()).status == "ok"
        before = len(journaled.ids)
        reasons: list[str] = []
        async with write_lock(db_url):
            locked_at = time.monotonic()
            while time.monotonic() - locked_at < LOCK_S:
                ready = await service.readiness()
                reasons += [r for r in ready.reasons if r.startswith("journal: ")]
                await asyncio.sleep(0.5)
            depth = service.journal.depth
            gauge = buffered_gauge(service)
            during = sum(1 for t in journaled.ids.values() if t >= locked_at)
        # the cycle went on writing commands, the journal kept them
        assert during >= 50, during
        assert depth >= during - 3 * 4, (depth, during)  # a cycle's batch may be in flight
        assert reasons, "ready was never degraded by the journal"
        assert all("outcome(s) buffered" in r for r in reasons)
        assert any("cannot write" in r or "no answer from the database" in r for r in reasons)
        assert gauge >= during - 3 * 4
        await service.journal.flush(timeout_s=60)
        ready = await service.readiness()
        service.controller.cycle.deciders.remove(decider)  # what it wrote last is journaled
        await service.wait_for_cycle(timeout_s=10)
        await service.journal.flush(timeout_s=60)
        assert ready.status == "ok", ready.reasons
        assert service.journal.dropped == 0
        async with service.store.engine.connect() as conn:
            rows = (await conn.execute(select(commands.c.command_id, commands.c.status))).all()
        stored = {cid: status for cid, status in rows}
        missing = sorted(set(journaled.ids) - set(stored))
        assert missing == [], f"{len(missing)} of {len(journaled.ids)} lost: {missing[:5]}"
        assert all(stored[c] == "failed" for c in journaled.ids if c.endswith("-gone"))
        assert len(rows) == len(stored)  # each once
        backend = make_url(db_url).get_backend_name()
        print(f"\n{backend}: locked {LOCK_S:.0f} s; {len(journaled.ids) - before} records "
              f"journaled since, {during} during the lock, {depth} buffered at the release, "
              f"0 lost; e.g. {reasons[-1]!r}")  # fmt: skip
