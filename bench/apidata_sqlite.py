"""The API benchmark's data in a SQLite file: intervals generated inside the database (a
recursive CTE per member and channel), settlement runs and statements, users; built once in a
file of its own and renamed into place (see :mod:`bench.apidata`)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher

from bench.apidata_rows import (
    CHANNELS,
    COMMUNITY,
    DEFAULT_CACHE,
    EXPORT_MWH,
    IMPORT_MWH,
    INTERVAL_COLS,
    OPERATOR,
    PASSWORD,
    QUALITY,
    VARIANTS,
    Dataset,
    build_day_totals,
    log,
    runs,
)
from store import Store


def _sqlite_ts(t: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text of a UTC instant (naive, fixed width)."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _drop_interval_indexes(con: sqlite3.Connection) -> list[str]:
    """Drop the secondary indexes of the intervals for the load; returns their definitions."""
    index_sql = [
        row[0]
        for row in con.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='member_intervals'"
            " AND sql IS NOT NULL"
        )
    ]
    for sql in index_sql:
        name = sql.split("INDEX", 1)[1].split("ON", 1)[0].strip()
        con.execute(f"DROP INDEX {name}")
    return index_sql


def _intervals(con: sqlite3.Connection, ds: Dataset) -> None:
    """Every member's two channels for every quarter-hour, one statement per member and
    channel, in one transaction."""
    t0 = int(ds.start_utc.timestamp())
    started = time.perf_counter()
    con.execute("BEGIN")
    for k in range(1, ds.members + 1):
        for channel in CHANNELS:
            mwh = IMPORT_MWH if channel == "import_energy_wh" else EXPORT_MWH
            con.execute(
                f"INSERT INTO member_intervals ({INTERVAL_COLS}) "
                "WITH RECURSIVE q(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM q WHERE i < ?) "
                f"SELECT ?, ?, strftime('%Y-%m-%d %H:%M:%S', ? + i * 900, 'unixepoch') "
                f"|| '.000000', {mwh}, {QUALITY}, 1, 0, "
                "strftime('%Y-%m-%d %H:%M:%S', ? + i * 900 + 960, 'unixepoch') || '.000000' "
                "FROM q, (SELECT ? AS k)",
                (ds.quarter_hours - 1, ds.member_id(k), channel, t0, t0, k),
            )
        if k % 100 == 0:
            rate = k * ds.quarter_hours * 2 / (time.perf_counter() - started)
            log(f"sqlite intervals: {k}/{ds.members} members ({rate / 1e6:.2f} M rows/s)")
    con.execute("COMMIT")


def _settlement(con: sqlite3.Connection, ds: Dataset) -> None:
    """Every settlement run of the year with a statement per member (Wh and EUR as the
    column types store them: scaled integers)."""
    for d in runs(ds):
        con.execute(
            "INSERT INTO settlement_runs (id, community_id, period_start, period_end, "
            "version, created_at, reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                d.run_id,
                COMMUNITY,
                _sqlite_ts(d.start),
                _sqlite_ts(d.end),
                d.version,
                _sqlite_ts(d.created_at),
                d.reason,
                d.details_json,
            ),
        )
        con.executemany(
            "INSERT INTO settlement_statements (run_id, member_id, consumption_wh, "
            "generation_wh, shared_received_wh, shared_delivered_wh, grid_import_wh, "
            "grid_export_wh, amount_eur, co2_g, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.run_id,
                    ds.member_id(k),
                    v.consumption_wh * 1000,
                    v.generation_wh * 1000,
                    v.received_wh * 1000,
                    v.delivered_wh * 1000,
                    v.residual_wh * 1000,
                    v.surplus_wh * 1000,
                    int(v.amount_eur * 1_000_000),
                    int(v.co2_g * 1000),
                    v.details_json,
                )
                for k in range(1, ds.members + 1)
                for v in (d.variants[k % VARIANTS],)
            ],
        )
        if d.run_id % 500 == 0:
            log(f"sqlite: {d.run_id} settlement runs")


def _sqlite_fill(path: Path, ds: Dataset, password_hash: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        con.execute("PRAGMA temp_store=MEMORY")
        index_sql = _drop_interval_indexes(con)
        _intervals(con, ds)
        log("sqlite: building the interval index")
        for sql in index_sql:
            con.execute(sql)
        con.execute("BEGIN")
        _settlement(con, ds)
        created = _sqlite_ts(ds.start_utc)
        con.executemany(
            "INSERT INTO users (username, password_hash, role, member_id, disabled, created_at) "
            "VALUES (?, ?, ?, ?, 0, ?)",
            [
                (ds.username(k), password_hash, "member", ds.member_id(k), created)
                for k in range(1, ds.members + 1)
            ]
            + [(OPERATOR, password_hash, "operator", None, created)],
        )
        con.execute("COMMIT")
        log("sqlite: ANALYZE")
        con.execute("ANALYZE")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _sqlite_paths(ds: Dataset, cache_dir: Path, rebuild: bool) -> tuple[Path, Path, bool]:
    """(final file, file to build in, whether the final file can be reused); clears the
    files a build would replace."""
    cache_dir = cache_dir.expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"api_{ds.key}.sqlite"
    building = cache_dir / f"building_{ds.key}.sqlite"
    if final.exists() and not rebuild:
        return final, building, True
    for old in cache_dir.glob(f"api_*_{ds.members}m_{ds.days}d_*.sqlite*"):
        old.unlink()  # older builds of the same size
    for suffix in ("", "-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return final, building, False


async def ensure_sqlite(
    ds: Dataset, cache_dir: Path = DEFAULT_CACHE, *, rebuild: bool = False
) -> str:
    """The URL of a SQLite file holding ``ds`` (built on first use, then reused)."""
    final, building, reuse = await asyncio.to_thread(_sqlite_paths, ds, cache_dir, rebuild)
    url = f"sqlite+aiosqlite:///{final}"
    if reuse:
        log(f"sqlite: reusing {final}")
        return url
    started = time.perf_counter()
    async with Store(f"sqlite+aiosqlite:///{building}"):
        pass  # migrated
    password_hash = PasswordHasher().hash(PASSWORD)
    await asyncio.to_thread(_sqlite_fill, building, ds, password_hash)
    await build_day_totals(f"sqlite+aiosqlite:///{building}", "sqlite")
    await asyncio.to_thread(building.rename, final)
    log(f"sqlite: built {final} in {time.perf_counter() - started:.0f} s")
    return url
