"""Ingest throughput of the store: readings per second into the raw-readings table.

Cases, each against the same baseline **in the same run** (one INSERT and one COMMIT per
reading, which is what an ingest path that acknowledges message by message without batching
would do):

* batch: :meth:`ReadingRepository.write` with 1,000 readings per transaction
  (``ON CONFLICT DO NOTHING``, one commit);
* redelivery: the same batches again (all duplicates, nothing inserted);
* group commit: :class:`ReadingWriter` with 100 concurrent producers of 10 readings each,
  every producer resumed after its batch committed;
* batch + mirror: batches that also queue their readings in the InfluxDB outbox.

Runs on SQLite (a temporary file) and on PostgreSQL at 127.0.0.1:5432 if it answers (a
temporary database, dropped afterwards). Flags: ``--quick`` (fewer readings and repetitions),
``--sqlite-only``. Reports medians over the repetitions; the machine is shared, so expect noise.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from kernel.readings import Reading
from store import ReadingWriter, Store, StoreSettings
from store.engine import write_tx
from store.schema import raw_readings

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def make_readings(n: int, offset: int) -> list[Reading]:
    return [
        Reading(f"meter-{i % 50}", "power_w", float(i), "W", T0 + timedelta(seconds=offset + i))
        for i in range(n)
    ]


async def reset(store: Store) -> None:
    async with write_tx(store.engine, "reset bench") as conn:
        await conn.execute(text("DELETE FROM raw_readings"))
        await conn.execute(text("DELETE FROM mirror_outbox"))
        await conn.execute(text("UPDATE mirror_counters SET value = 0"))


async def baseline(store: Store, readings: list[Reading]) -> None:
    for r in readings:
        async with write_tx(store.engine, "baseline insert") as conn:
            await conn.execute(
                insert(raw_readings),
                {
                    "device_id": r.device_id,
                    "channel": r.channel,
                    "ts": r.ts,
                    "value": r.value,
                    "unit": r.unit,
                    "quality": r.quality.value,
                },
            )


async def batched(store: Store, readings: list[Reading]) -> None:
    for first in range(0, len(readings), 1000):
        await store.readings.write(readings[first : first + 1000], now=T0)


async def group_commit(store: Store, readings: list[Reading]) -> None:
    chunks = [readings[i : i + 10] for i in range(0, len(readings), 10)]
    async with ReadingWriter(store.readings, now=lambda: T0) as writer:
        for first in range(0, len(chunks), 100):
            await asyncio.gather(*(writer.write(c) for c in chunks[first : first + 100]))


async def measure(
    store: Store,
    case: Callable[[Store, list[Reading]], Awaitable[None]],
    n: int,
    reps: int,
    *,
    keep: bool = False,
) -> float:
    """Median readings/s over ``reps`` runs on an emptied table (unless ``keep``)."""
    rates = []
    for _ in range(reps):
        if not keep:
            await reset(store)
        readings = make_readings(n, 0)
        start = time.perf_counter()
        await case(store, readings)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


async def bench_backend(name: str, url: str, n_base: int, n: int, reps: int) -> list[str]:
    rows = []
    async with Store(url) as store:
        base = await measure(store, baseline, n_base, reps)
        rows.append(f"| {name} | baseline: 1 commit per reading | {n_base} | {base:,.0f} | 1.0 |")
        for label, case, keep in (
            ("batch of 1000, ON CONFLICT DO NOTHING", batched, False),
            ("redelivery of the same batches", batched, True),
            ("group commit, 100 producers × 10", group_commit, False),
        ):
            if keep:
                await reset(store)
                await batched(store, make_readings(n, 0))
            rate = await measure(store, case, n, reps, keep=keep)
            rows.append(f"| {name} | {label} | {n} | {rate:,.0f} | {rate / base:,.1f} |")
    settings = StoreSettings(mirror_readings=True, outbox_capacity=10 * n)
    async with Store(url, settings=settings) as store:
        rate = await measure(store, batched, n, reps)
        rows.append(
            f"| {name} | batch of 1000 + InfluxDB outbox | {n} | {rate:,.0f} | {rate / base:,.1f} |"
        )
    return rows


async def run(argv: list[str]) -> None:
    quick = "--quick" in argv
    n_base, n, reps = (300, 5_000, 3) if quick else (1_000, 20_000, 5)
    print("| backend | case | readings | readings/s (median) | × baseline |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        for row in await bench_backend("SQLite (WAL)", url, n_base, n, reps):
            print(row, flush=True)
    if "--sqlite-only" in argv:
        return
    try:
        import asyncpg

        admin = await asyncpg.connect(
            host="127.0.0.1", port=5432, user="postgres", database="test", timeout=5
        )
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"\n(PostgreSQL not reachable, skipped: {exc!r})")
        return
    db = f"waldstadt_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{db}"')
    try:
        for row in await bench_backend("PostgreSQL 15", f"{PG}/{db}", n_base, n, reps):
            print(row, flush=True)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str]) -> None:
    asyncio.run(run(argv))
