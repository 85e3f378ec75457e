"""Bulk data for the API benchmark: N members × one year of quarter-hours, on SQLite or
PostgreSQL, built once and cached.

What is stored is what the service writes for such a community:

* ``member_intervals``: both meter channels (``import_energy_wh``, ``export_energy_wh``) of
  every member for every quarter-hour of the year (version 1; about one in 500 a substitute
  value; every fourth member has PV and exports around noon) — 70 million rows for
  1,000 members;
* ``settlement_runs`` / ``settlement_statements``: one **final** run per local day (92, 96 or
  100 quarter-hours) with a statement per member, its details shaped as
  :mod:`scheduler.settlement_job` writes them, quarter-hour ``lines`` included (they are most
  of a statement's bytes, and the balance view reads them back);
* ``users``: a member account per member (``u0001`` … sees ``m0001``) and an operator
  (``bench-operator``), all with the password :data:`PASSWORD`.

The intervals are generated inside the database (``INSERT … SELECT`` over a recursive CTE on
SQLite, over ``generate_series`` on PostgreSQL: no row passes through Python), the statements
with ``executemany`` / ``COPY``. The secondary index is dropped for the load and built once
afterwards. A finished SQLite file is renamed into place; a finished PostgreSQL database gets
the comment ``complete``; both are named by :attr:`Dataset.key` (data version, schema
revision, size), so a repeat run with the same key starts at once and a schema migration or a
change here (bump :data:`DATA_VERSION`) rebuilds.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
from argon2 import PasswordHasher

from store import Store
from store.migrate import head_revision
from vpp.quarterhours import local_day_bounds

#: Bump when the generated data changes shape; cached files and databases are keyed by it.
DATA_VERSION = 1
TZ = ZoneInfo("Europe/Berlin")
PASSWORD = "bench-password-0123"
OPERATOR = "bench-operator"
COMMUNITY = "bench-community"
CHANNELS = ("export_energy_wh", "import_energy_wh")
#: Distinct statement shapes per day; member k gets shape k % VARIANTS (the bytes and the
#: parsing cost are a real statement's, without writing 365,000 distinct JSON documents).
VARIANTS = 16
PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))
DEFAULT_CACHE = Path(os.environ.get("BENCH_API_CACHE", "~/.cache/waldstadt-bench"))

# Energy per quarter-hour in mWh, from the member number k and the quarter-hour index i of the
# year; the same integer expression on both backends.
_IMPORT_MWH = "(20000 + ((i * 7919 + k * 104729) % 180000))"
_EXPORT_MWH = (
    "(CASE WHEN k % 4 = 0 AND (i % 96) BETWEEN 30 AND 66 "
    "THEN ((i * 6007 + k * 3571) % 400000) ELSE 0 END)"
)
_QUALITY = "(CASE WHEN (i * 13 + k) % 500 = 0 THEN 'substitute' ELSE 'good' END)"
_INTERVAL_COLS = (
    "member_id, channel, interval_start, energy_wh, quality, version, restated, recorded_at"
)


@dataclass(frozen=True, slots=True)
class Dataset:
    members: int = 1000
    days: int = 365
    first_day: date = date(2025, 1, 1)

    @property
    def key(self) -> str:
        return (
            f"v{DATA_VERSION}_{head_revision()}_{self.members}m_{self.days}d_"
            f"{self.first_day:%Y%m%d}"
        ).lower()

    @property
    def start_utc(self) -> datetime:
        return local_day_bounds(self.first_day, TZ)[0]

    @property
    def end_utc(self) -> datetime:
        return local_day_bounds(self.first_day + timedelta(days=self.days - 1), TZ)[1]

    @property
    def quarter_hours(self) -> int:
        return int((self.end_utc - self.start_utc) / timedelta(minutes=15))

    def member_id(self, k: int) -> str:
        """Member number ``k`` (1-based)."""
        return f"m{k:04d}"

    def username(self, k: int) -> str:
        return f"u{k:04d}"

    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=d) for d in range(self.days)]


def _log(msg: str) -> None:
    print(f"[apidata {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- statements -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Variant:
    consumption_wh: int
    generation_wh: int
    received_wh: int
    delivered_wh: int
    residual_wh: int
    surplus_wh: int
    amount_eur: Decimal
    co2_g: Decimal
    details_json: str


def _variant(day_start: datetime, n_qh: int, seed: int) -> _Variant:
    """One member-day statement shaped like the settlement job's final statement."""
    rng = random.Random(seed)
    producer = seed % 4 == 0
    cons = [rng.randrange(20, 200) for _ in range(n_qh)]
    gen = [rng.randrange(0, 400) if producer and 30 <= q % 96 <= 66 else 0 for q in range(n_qh)]
    own = [min(c, g) for c, g in zip(cons, gen, strict=True)]
    recv = [
        rng.randrange(0, c - o + 1) if not producer else 0 for c, o in zip(cons, own, strict=True)
    ]
    deliv = [rng.randrange(0, g - o + 1) for g, o in zip(gen, own, strict=True)]
    residual = sum(cons) - sum(own) - sum(recv)
    surplus = sum(gen) - sum(own) - sum(deliv)
    shared_cost = Decimal(sum(recv)) * Decimal("0.00012")
    residual_cost = Decimal(residual) * Decimal("0.00035")
    revenue = Decimal(sum(deliv)) * Decimal("0.0001")
    net = shared_cost + residual_cost - revenue
    amount = net.quantize(Decimal("0.01"))
    co2 = (Decimal(sum(recv)) * Decimal("0.366")).quantize(Decimal("0.001"))
    qh_start = [(day_start + q * timedelta(minutes=15)).isoformat() for q in range(n_qh)]
    details: dict[str, Any] = {
        "quality": "L1",
        "quarter_hours": n_qh,
        "substitute_quarter_hours": {"L2": 0, "L3": 0},
        "own_generation_used_wh": sum(own),
        "participation_pct": 100,
        "money_eur": {
            "shared_cost_eur": str(shared_cost.quantize(Decimal("0.01"))),
            "residual_cost_eur": str(residual_cost.quantize(Decimal("0.01"))),
            "network_fee_eur": "0.00",
            "shared_revenue_eur": str(revenue.quantize(Decimal("0.01"))),
        },
        "net_exact_eur": str(net),
        "lines": {
            "qh_start": qh_start,
            "quality": ["L1"] * n_qh,
            "consumption_wh": cons,
            "generation_wh": gen,
            "received_wh": recv,
            "delivered_wh": deliv,
        },
    }
    return _Variant(
        sum(cons), sum(gen), sum(recv), sum(deliv), residual, surplus, amount, co2,
        json.dumps(details),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Day:
    run_id: int
    start: datetime
    end: datetime
    details_json: str
    variants: list[_Variant]


def _days(ds: Dataset) -> Iterator[_Day]:
    for n, day in enumerate(ds.day_list()):
        start, end = local_day_bounds(day, TZ)
        n_qh = int((end - start) / timedelta(minutes=15))
        variants = [_variant(start, n_qh, n * VARIANTS + v) for v in range(VARIANTS)]
        per = ds.members / VARIANTS
        totals = {
            "consumption_wh": int(sum(v.consumption_wh for v in variants) * per),
            "generation_wh": int(sum(v.generation_wh for v in variants) * per),
            "received_wh": int(sum(v.received_wh for v in variants) * per),
            "delivered_wh": int(sum(v.delivered_wh for v in variants) * per),
        }
        details = {
            "kind": "final",
            "day": day.isoformat(),
            "through": end.isoformat(),
            "quarter_hours": n_qh,
            "complete": True,
            "inputs_fingerprint": f"bench-{DATA_VERSION}-{day.isoformat()}",
            "quality": "L1",
            "missing_members": [],
            "substitute_quarter_hours": {},
            "totals_wh": totals,
        }
        yield _Day(n + 1, start, end, json.dumps(details), variants)


def _created_at(d: _Day) -> datetime:
    return d.end + timedelta(hours=1, minutes=15)


# -- SQLite -------------------------------------------------------------------------------------


def _sqlite_ts(t: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text of a UTC instant (naive, fixed width)."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_fill(path: Path, ds: Dataset, password_hash: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        con.execute("PRAGMA temp_store=MEMORY")
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
        t0 = int(ds.start_utc.timestamp())
        started = time.perf_counter()
        con.execute("BEGIN")
        for k in range(1, ds.members + 1):
            for channel in CHANNELS:
                mwh = _IMPORT_MWH if channel == "import_energy_wh" else _EXPORT_MWH
                con.execute(
                    f"INSERT INTO member_intervals ({_INTERVAL_COLS}) "
                    "WITH RECURSIVE q(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM q WHERE i < ?) "
                    f"SELECT ?, ?, strftime('%Y-%m-%d %H:%M:%S', ? + i * 900, 'unixepoch') "
                    f"|| '.000000', {mwh}, {_QUALITY}, 1, 0, "
                    "strftime('%Y-%m-%d %H:%M:%S', ? + i * 900 + 960, 'unixepoch') || '.000000' "
                    "FROM q, (SELECT ? AS k)",
                    (ds.quarter_hours - 1, ds.member_id(k), channel, t0, t0, k),
                )
            if k % 100 == 0:
                rate = k * ds.quarter_hours * 2 / (time.perf_counter() - started)
                _log(f"sqlite intervals: {k}/{ds.members} members ({rate / 1e6:.2f} M rows/s)")
        con.execute("COMMIT")
        _log("sqlite: building the interval index")
        for sql in index_sql:
            con.execute(sql)
        con.execute("BEGIN")
        for d in _days(ds):
            con.execute(
                "INSERT INTO settlement_runs (id, community_id, period_start, period_end, "
                "version, created_at, reason, details) VALUES (?, ?, ?, ?, 1, ?, 'final', ?)",
                (
                    d.run_id,
                    COMMUNITY,
                    _sqlite_ts(d.start),
                    _sqlite_ts(d.end),
                    _sqlite_ts(_created_at(d)),
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
        _log("sqlite: ANALYZE")
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
        _log(f"sqlite: reusing {final}")
        return url
    started = time.perf_counter()
    async with Store(f"sqlite+aiosqlite:///{building}"):
        pass  # migrated
    password_hash = PasswordHasher().hash(PASSWORD)
    await asyncio.to_thread(_sqlite_fill, building, ds, password_hash)
    await asyncio.to_thread(building.rename, final)
    _log(f"sqlite: built {final} in {time.perf_counter() - started:.0f} s")
    return url


# -- PostgreSQL ---------------------------------------------------------------------------------


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"


async def _connect(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=database)


async def _pg_fill(name: str, ds: Dataset, password_hash: str) -> None:
    con = await _connect(name)
    try:
        await con.execute("SET synchronous_commit = off")
        await con.execute("SET maintenance_work_mem = '512MB'")
        index_sql = [
            r["indexdef"]
            for r in await con.fetch(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'member_intervals' "
                "AND indexname LIKE 'ix_%'"
            )
        ]
        for sql in index_sql:
            await con.execute(f"DROP INDEX {sql.split('INDEX', 1)[1].split('ON', 1)[0].strip()}")
        started = time.perf_counter()
        chunk = 50
        for k0 in range(1, ds.members + 1, chunk):
            k1 = min(ds.members, k0 + chunk - 1)
            await con.execute(
                f"INSERT INTO member_intervals ({_INTERVAL_COLS}) "
                "SELECT 'm' || lpad(k::text, 4, '0'), ch, "
                "$3::timestamptz + i * interval '15 minutes', "
                f"(CASE WHEN ch = 'import_energy_wh' THEN {_IMPORT_MWH} ELSE {_EXPORT_MWH} END)"
                f"::numeric / 1000, {_QUALITY}, 1, false, "
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
            _log(f"postgresql intervals: {k1}/{ds.members} members ({rate / 1e6:.2f} M rows/s)")
        _log("postgresql: building the interval index")
        for sql in index_sql:
            await con.execute(sql)
        run_rows: list[tuple[Any, ...]] = []
        statement_rows: list[tuple[Any, ...]] = []
        for d in _days(ds):
            run_rows.append(
                (d.run_id, COMMUNITY, d.start, d.end, 1, _created_at(d), "final", d.details_json)
            )
            statement_rows.extend(
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
            )
        await con.copy_records_to_table(
            "settlement_runs",
            records=run_rows,
            columns=[
                "id", "community_id", "period_start", "period_end", "version", "created_at",
                "reason", "details",
            ],
        )  # fmt: skip
        await con.execute(
            "SELECT setval(pg_get_serial_sequence('settlement_runs', 'id'), $1)", len(run_rows)
        )
        _log(f"postgresql: copying {len(statement_rows)} statements")
        await con.copy_records_to_table(
            "settlement_statements",
            records=statement_rows,
            columns=[
                "run_id", "member_id", "consumption_wh", "generation_wh", "shared_received_wh",
                "shared_delivered_wh", "grid_import_wh", "grid_export_wh", "amount_eur", "co2_g",
                "details",
            ],
        )  # fmt: skip
        await con.copy_records_to_table(
            "users",
            records=[
                (ds.username(k), password_hash, "member", ds.member_id(k), False, ds.start_utc)
                for k in range(1, ds.members + 1)
            ]
            + [(OPERATOR, password_hash, "operator", None, False, ds.start_utc)],
            columns=["username", "password_hash", "role", "member_id", "disabled", "created_at"],
        )
        _log("postgresql: VACUUM ANALYZE")
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
            _log(f"postgresql: reusing database {name}")
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
    admin = await _connect("postgres")
    try:
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS 'complete'")
    finally:
        await admin.close()
    _log(f"postgresql: built {name} in {time.perf_counter() - started:.0f} s")
    return pg_url(name)


BACKENDS: dict[str, Callable[..., Any]] = {"sqlite": ensure_sqlite, "postgresql": ensure_postgres}


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.apidata [sqlite] [postgresql] [--members=N] [--days=N] [--rebuild]``"""
    import sys

    args = sys.argv[1:] if argv is None else argv
    opts = {a.split("=")[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
    ds = Dataset(int(opts.get("--members", 1000)), int(opts.get("--days", 365)))
    backends = [a for a in args if not a.startswith("--")] or list(BACKENDS)
    for b in backends:
        if b == "sqlite":
            print(asyncio.run(ensure_sqlite(ds, rebuild="--rebuild" in args)))
        else:
            print(asyncio.run(ensure_postgres(ds, rebuild="--rebuild" in args)))


if __name__ == "__main__":
    main()
