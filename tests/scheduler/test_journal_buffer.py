"""The command journal's persisted buffer: nothing the writer handed over is lost while the
database refuses it, nor when the process is killed meanwhile; beyond the bound the journal
sheds superseded outcomes first, and says so.

The database is real (SQLite and PostgreSQL); its refusals come from a switch in front of
the store (:class:`Refusing`), or -- for the killed process -- from a real lock held by the
test while a writer in a process of its own journals (``tests/scheduler/journal_child.py``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kernel.backoff import Backoff
from kernel.clock import ManualClock, RealClock
from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from scheduler.journal import StoreJournal
from scheduler.journal_background import BackgroundJournal, service_journal
from scheduler.journal_buffer import (
    SUFFIX,
    JournalBatch,
    JournalBuffer,
    buffer_path,
    encode_batch,
    shed_outcomes,
)
from scheduler.recovery import reapply_live
from scheduler.writer import CommandWriter
from store import Store
from store.commands import Command as StoredCommandRow
from store.commands import CommandOutcome
from store.errors import StoreUnavailable
from tests.scheduler.journal_child import DEVICES, Inverter

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
FAST = Backoff(initial_s=0.01, cap_s=0.05)


def limit(cid: str, target: str, pct: float = 40.0) -> Command:
    return Command(cid, target, CommandKind.POWER_LIMIT_PCT, pct, T0 + timedelta(minutes=15),
                   "dispatch", revert_s=600)  # fmt: skip


def applied(*cmds: Command) -> list[CommandResult]:
    return [CommandResult(c, CommandStatus.APPLIED) for c in cmds]


def outcome(cid: str, target: str, kind: str = "power_limit_pct") -> CommandOutcome:
    row = StoredCommandRow(cid, target, {"kind": kind, "value": 1.0}, T0, T0 + timedelta(hours=1))
    return CommandOutcome(row, "sent")


class Refusing:
    """The store's journal behind a switch: while ``down`` every record fails as a locked
    SQLite database's would."""

    def __init__(self, inner: StoreJournal) -> None:
        self.inner = inner
        self.down = False
        self.attempts = 0

    async def record_outcomes(self, entries: Sequence[CommandOutcome], now: datetime) -> None:
        self.attempts += 1
        if self.down:
            raise StoreUnavailable("sqlite:///w.db", "record commands: database is locked")
        await self.inner.record_outcomes(entries, now)


async def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state the journal's task changes
            await asyncio.sleep(0.01)


def metric(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


# -- the file -------------------------------------------------------------------------------


def test_a_batch_round_trips_and_a_line_cut_short_is_skipped(tmp_path: Path) -> None:
    buf = JournalBuffer(tmp_path / f"w.db{SUFFIX}")
    first = JournalBatch(T0, (outcome("a", "inv-1"), outcome("b", "inv-2")))
    second = JournalBatch(T0 + timedelta(seconds=5), (outcome("c", "inv-1"),))
    buf.append([first, second])
    assert buf.load() == ([first, second], 0)
    with buf.path.open("a", encoding="utf-8") as f:  # a crash in the middle of a write
        f.write(encode_batch(second)[:40])
    assert buf.load() == ([first, second], 0)
    buf.rewrite([first, second, second])
    text = buf.path.read_text(encoding="utf-8")
    buf.path.write_text(text.replace(encode_batch(second), "{not json", 1), encoding="utf-8")
    assert buf.load() == ([first, second], 1)  # a damaged line in the middle is counted
    buf.clear()
    assert buf.load() == ([], 0)
    buf.remove()
    assert not buf.path.exists()


def test_the_buffer_lives_next_to_the_database(tmp_path: Path) -> None:
    assert buffer_path("sqlite+aiosqlite:///var/w.sqlite") == Path(f"var/w.sqlite{SUFFIX}")
    assert buffer_path("sqlite+aiosqlite://") is None
    assert buffer_path("sqlite+aiosqlite:///:memory:") is None
    pg = buffer_path("postgresql+asyncpg://u:secret@db.example:5433/waldstadt", tmp_path)
    assert pg == tmp_path / "waldstadt" / f"db.example-5433-waldstadt{SUFFIX}"


def test_shedding_takes_superseded_outcomes_first_then_the_oldest() -> None:
    batches = [
        JournalBatch(T0, (outcome("a1", "a"), outcome("only-b", "b"))),
        JournalBatch(T0, (outcome("a2", "a"), outcome("c1", "c", "dim_level_pct"))),
        JournalBatch(T0, (outcome("a3", "a"), outcome("c2", "c", "dim_level_pct"))),
    ]
    kept, n = shed_outcomes(batches, 3)
    ids = [o.command.command_id for b in kept for o in b.outcomes]
    assert (n, ids) == (3, ["only-b", "a3", "c2"])  # the newest per target and kind stay
    kept, n = shed_outcomes(batches, 5)
    assert (n, [o.command.command_id for b in kept for o in b.outcomes]) == (5, ["c2"])


# -- the journal ------------------------------------------------------------------------------


async def test_while_the_database_refuses_nothing_is_lost_and_health_says_why(
    store_url: str, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    path = tmp_path / f"journal{SUFFIX}"
    registry = CollectorRegistry()
    async with Store(store_url) as store:
        refusing = Refusing(StoreJournal(store, clock.now))
        journal = BackgroundJournal(refusing, clock.now, buffer_path=path, retry=FAST,
                                    registry=registry)  # fmt: skip
        async with journal:
            assert journal.health().ok
            refusing.down = True
            for i in range(10):
                await journal.record(applied(*(limit(f"q{i}-{d}", d, i) for d in DEVICES)))
                clock.advance(10)
            # every batch is in the file the moment record() returned
            assert sum(len(b.outcomes) for b in JournalBuffer(path).load()[0]) == 840
            await eventually(lambda: refusing.attempts >= 3)
            health = journal.health()
            assert not health.ok
            assert "database is locked" in health.detail
            assert f"840 outcome(s) buffered in {path} (bound 50000)" in health.detail
            assert metric(registry, "waldstadt_journal_buffered_outcomes") == 840
            assert metric(registry, "waldstadt_journal_record_failures_total")
            assert await store.commands.get("q0-inv-00") is None
            refusing.down = False
            await journal.flush(timeout_s=10)
            assert journal.health().ok
            assert path.read_text(encoding="utf-8") == ""
            assert metric(registry, "waldstadt_journal_buffered_outcomes") == 0
            first = await store.commands.get("q0-inv-00")
            last = await store.commands.get("q9-inv-83")
            assert first is not None
            assert last is not None
            # each batch keeps its own issue time: the newest per device is still the newest
            assert (first.command.issued_at, last.command.issued_at) == (
                T0,
                T0 + timedelta(seconds=90),
            )
            live = await store.commands.live(clock.now())
            assert len(live) == 840
        assert not path.exists()  # a clean stop with nothing left removes the file
        assert journal.dropped == 0
        assert metric(registry, "waldstadt_journal_buffered_outcomes") is None  # unregistered


async def test_beyond_the_bound_superseded_outcomes_are_shed_counted_and_named(
    store_url: str, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    path = tmp_path / f"journal{SUFFIX}"
    registry = CollectorRegistry()
    async with Store(store_url) as store:
        refusing = Refusing(StoreJournal(store, clock.now))
        refusing.down = True
        journal = BackgroundJournal(refusing, clock.now, buffer_path=path, retry=FAST,
                                    max_outcomes=100, registry=registry)  # fmt: skip
        async with journal:
            await journal.record(applied(limit("school-once", "school-pv")))
            for i in range(30):  # 120 outcomes: 20 beyond the bound
                await journal.record(applied(*(limit(f"r{i}-{d}", d) for d in DEVICES[:4])))
                clock.advance(1)
            assert journal.depth <= 100
            assert journal.dropped >= 21
            assert metric(registry, "waldstadt_journal_dropped_outcomes_total") == journal.dropped
            assert f"{journal.dropped} shed beyond the bound" in journal.health().detail
            in_file = [o.command.command_id for b in JournalBuffer(path).load()[0]
                       for o in b.outcomes]  # fmt: skip
            assert len(in_file) == journal.depth
            refusing.down = False
            await journal.flush(timeout_s=10)
        # what the restart needs survived: the newest per device, and the lone setpoint
        live = {c.command.command_id for c in await store.commands.live(clock.now())}
        assert {"school-once", *(f"r29-{d}" for d in DEVICES[:4])} <= live
        assert len(live) == 121 - journal.dropped


@pytest.mark.slow
async def test_killed_while_the_database_is_locked_the_buffer_brings_every_record_back(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.sqlite"
    url = f"sqlite+aiosqlite:///{db}"
    async with Store(url):
        pass  # migrated
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.scheduler.journal_child", str(db),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    printed: list[list[str]] = []

    async def batches(n: int) -> None:
        assert child.stdout is not None
        async with asyncio.timeout(60):
            while len(printed) < n:
                line = await child.stdout.readline()
                if not line:
                    err = b"" if child.stderr is None else await child.stderr.read()
                    raise AssertionError(f"child ended: {err.decode()[-2000:]}")
                printed.append(json.loads(line)["ids"])

    lock = sqlite3.connect(db, isolation_level=None)
    try:
        await batches(3)
        lock.execute("BEGIN EXCLUSIVE")
        locked_from = len(printed)
        await batches(locked_from + 25)
        child.send_signal(signal.SIGKILL)  # in the middle: no flush, no goodbye
        rest, _ = await child.communicate()
        printed += [json.loads(line)["ids"] for line in rest.decode().splitlines()]
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
    owed = [cid for ids in printed for cid in ids]
    buffered = tmp_path / f"w.sqlite{SUFFIX}"
    assert buffered.stat().st_size > 0
    # the restart: the buffer first, then the commands in force
    clock = RealClock()
    inverters = {d: Inverter() for d in DEVICES}
    async with Store(url) as store, service_journal(store, clock.now) as journal:
        replayed = await journal.replay(timeout_s=30)
        stored = {cid: await store.commands.get(cid) for cid in owed}
        lost = sorted(cid for cid, s in stored.items() if s is None)
        assert lost == [], f"{len(lost)} of {len(owed)} lost, e.g. {lost[:3]}"
        assert {s.status for s in stored.values() if s is not None} == {"sent"}
        writer = CommandWriter(inverters, clock, journal=journal)
        again = await reapply_live(store, writer, clock.now())
    assert replayed >= (len(printed) - locked_from) * len(DEVICES)
    newest = printed[-1]
    assert [r.command.command_id for r in again] == newest  # one per device, the newest
    assert {r.status for r in again} == {CommandStatus.APPLIED}
    assert all(inv.limits == [(inv.limits[0][0], f"k{len(printed) - 1}-{d}")]
               for d, inv in inverters.items())  # fmt: skip
    assert not buffered.exists()
    print(
        f"\nkilled with the database locked: {len(owed)} records owed, {replayed} replayed "
        f"from the buffer, 0 lost; {len(again)} commands re-applied (newest per device)"
    )
