"""The API benchmark's data in a PostgreSQL database: intervals generated inside the database
(``generate_series``), settlement runs and statements by ``COPY``, users; a finished database
gets the comment ``complete`` (see :mod:`bench.apidata`)."""

from __future__ import annotations

import time
from decimal import Decimal

import asyncpg  # type: ignore[import-untyped]
from argon2 import PasswordHasher

from bench.apidata_rows import (
    COMMUNITY,
    EXPORT_MWH,
    IMPORT_MWH,
    INTERVAL_COLS,
    OPERATOR,
    PASSWORD,
    PG_HOST,
    PG_PORT,
    QUALITY,
    VARIANTS,
    Dataset,
    build_day_totals,
    log,
    runs,
)
from store import Store


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"


async def _connect(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=database)


async def _drop_interval_indexes(con: asyncpg.Connection) -> list[str]:
    """Drop the secondary indexes of the intervals for the load; returns their definitions."""
    index_sql = [
        r["indexdef"]
        for r in await con.fetch(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'member_intervals' "
            "AND indexname LIKE 'ix_%'"
        )
    ]
    for sql in index_sql:
        await con.execute(f"DROP INDEX {sql.split('INDEX', 1)[1].split('ON', 1)[0].strip()}")
    return index_sql


async def _intervals(con: asyncpg.Connection, ds: Dataset) -> None:
    """Every member's two channels for every quarter-hour, 50 members per statement."""
    started = time.perf_counter()
    chunk = 50
    for k0 in range(1, ds.members + 1, chunk):
        k1 = min(ds.members, k0 + chunk - 1)
        await con.execute(
            f"INSERT INTO member_intervals ({INTERVAL_COLS}) "
            "SELECT 'm' || lpad(k::text, 4, '0'), ch, "
            "$3::timestamptz + i * interval '15 minutes', "
            f"(CASE WHEN ch = 'import_energy_wh' THEN {IMPORT_MWH} ELSE {EXPORT_MWH} END)"
            f"::numeric / 1000, {QUALITY}, 1, false, "
            "$3::timestamptz + i * interval '15 minutes' + interval '16 minutes' "
            "FROM generate_series($1::bigint, $2::bigint) k, "
            "unnest(ARRAY['export_energy_wh', 'import_energy_wh']) ch, "
            "generate_series(0::bigint, $4::bigint) i ORDER BY k, ch, i",
            k0,
            k1,
            ds.start_utc,
            ds.quarter_hours - 1,
        )
        rate = k1 * ds.quarter_hours * 2 / (time.perf_counter() - started)
        log(f"postgresql intervals: {k1}/{ds.members} members ({rate / 1e6:.2f} M rows/s)")


async def _settlement(con: asyncpg.Connection, ds: Dataset) -> None:
    """Every settlement run of the year with a statement per member, by COPY."""
    last = 0
    for d in runs(ds):
        await con.copy_records_to_table(
            "settlement_runs",
            records=[
                (d.run_id, COMMUNITY, d.start, d.end, d.version, d.created_at, d.reason,
                 d.details_json)
            ],
            columns=[
                "id", "community_id", "period_start", "period_end", "version", "created_at",
                "reason", "details",
            ],
        )  # fmt: skip
        await con.copy_records_to_table(
            "settlement_statements",
            records=[
                (
                    d.run_id,
                    ds.member_id(k),
                    Decimal(v.consumption_wh),
                    Decimal(v.generation_wh),
                    Decimal(v.received_wh),
                    Decimal(v.delivered_wh),
                    Decimal(v.residual_wh),
                    Decimal(v.surplus_wh),
                    v.amount_eur,
                    v.co2_g,
                    v.details_json,
                )
                for k in range(1, ds.members + 1)
                for v in (d.variants[k % VARIANTS],)
            ],
            columns=[
                "run_id", "member_id", "consumption_wh", "generation_wh",
                "shared_received_wh", "shared_delivered_wh", "grid_import_wh",
                "grid_export_wh", "amount_eur", "co2_g", "details",
            ],
        )  # fmt: skip
        last = d.run_id
        if last % 500 == 0:
            log(f"postgresql: {last} settlement runs")
    await con.execute("SELECT setval(pg_get_serial_sequence('settlement_runs', 'id'), $1)", last)


async def _pg_fill(name: str, ds: Dataset, password_hash: str) -> None:
    con = await _connect(name)
    try:
        await con.execute("SET synchronous_commit = off")
        await con.execute("SET maintenance_work_mem = '512MB'")
        index_sql = await _drop_interval_indexes(con)
        await _intervals(con, ds)
        log("postgresql: building the interval index")
        for sql in index_sql:
            await con.execute(sql)
        await _settlement(con, ds)
        await con.copy_records_to_table(
            "users",
            records=[
                (ds.username(k), password_hash, "member", ds.member_id(k), False, ds.start_utc)
                for k in range(1, ds.members + 1)
            ]
            + [(OPERATOR, password_hash, "operator", None, False, ds.start_utc)],
            columns=["username", "password_hash", "role", "member_id", "disabled", "created_at"],
        )
        log("postgresql: VACUUM ANALYZE")
        await con.execute("VACUUM ANALYZE")
    finally:
        await con.close()


async def ensure_postgres(ds: Dataset, *, rebuild: bool = False) -> str:
    """The URL of a PostgreSQL database holding ``ds`` (built on first use, then reused)."""
    name = f"waldstadt_bench_api_{ds.key}"[:63]
    admin = await _connect("postgres")
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            name,
        )
        if comment == "complete" and not rebuild:
            log(f"postgresql: reusing database {name}")
            return pg_url(name)
        # older builds of the same size (another data version or schema revision)
        stale = await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            f"waldstadt_bench_api_%_{ds.members}m_{ds.days}d_%",
        )
        for row in stale:
            await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    started = time.perf_counter()
    async with Store(pg_url(name)):
        pass  # migrated
    await _pg_fill(name, ds, PasswordHasher().hash(PASSWORD))
    await build_day_totals(pg_url(name), "postgresql")
    admin = await _connect("postgres")
    try:
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS 'complete'")
    finally:
        await admin.close()
    log(f"postgresql: built {name} in {time.perf_counter() - started:.0f} s")
    return pg_url(name)
