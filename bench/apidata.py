"""Bulk data for the API benchmark: N members × one year of quarter-hours, on SQLite or
PostgreSQL, built once and cached.

What is stored is what the service writes for such a community:

* ``member_intervals``: both meter channels (``import_energy_wh``, ``export_energy_wh``) of
  every member for every quarter-hour of the year (version 1; about one in 500 a substitute
  value; every fourth member has PV and exports around noon) — 70 million rows for
  1,000 members;
* ``settlement_runs`` / ``settlement_statements``: per local day (92, 96 or 100
  quarter-hours) :attr:`Dataset.provisional` **provisional** versions (the day so far, as
  the service appends after quarter-hours) and then the **final** run, each with a statement
  per member, details shaped as :mod:`vpp.settlement.runs` makes them (the final one
  with its quarter-hour ``lines``, most of a statement's bytes). The service appends a
  provisional version after every quarter-hour, ~96 a day; the default 8 keeps the data at
  ~3 million statements instead of ~35 million, which is enough to make "the newest version
  of each period" a real choice among many;
* ``member_day_totals``: built by the store's own builder from those intervals (what the
  service keeps as it writes them), in Europe/Berlin;
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

from kernel.quarterhours import local_day_bounds
from store import Store
from store.migrate import head_revision

#: Bump when the generated data changes shape; cached files and databases are keyed by it.
DATA_VERSION = 2
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
    #: provisional versions per day before the final run
    provisional: int = 8

    @property
    def key(self) -> str:
        return (
            f"v{DATA_VERSION}_{head_revision()}_{self.members}m_{self.days}d_"
            f"{self.provisional}p_{self.first_day:%Y%m%d}"
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


def _variants(day_start: datetime, n_qh: int, seed: int, throughs: list[int]) -> list[_Variant]:
    """One member's statements of a day shaped like the settlement job's: one per entry of
    ``throughs`` (the day through that many quarter-hours; provisional, without lines) and
    the final one (all quarter-hours, with its lines) last."""
    rng = random.Random(seed)
    producer = seed % 4 == 0
    cons = [rng.randrange(20, 200) for _ in range(n_qh)]
    gen = [rng.randrange(0, 400) if producer and 30 <= q % 96 <= 66 else 0 for q in range(n_qh)]
    own = [min(c, g) for c, g in zip(cons, gen, strict=True)]
    recv = [
        rng.randrange(0, c - o + 1) if not producer else 0 for c, o in zip(cons, own, strict=True)
    ]
    deliv = [rng.randrange(0, g - o + 1) for g, o in zip(gen, own, strict=True)]

    def upto(n: int, with_lines: bool) -> _Variant:
        c, g, o, r, d = (sum(x[:n]) for x in (cons, gen, own, recv, deliv))
        residual = c - o - r
        surplus = g - o - d
        shared_cost = Decimal(r) * Decimal("0.00012")
        residual_cost = Decimal(residual) * Decimal("0.00035")
        revenue = Decimal(d) * Decimal("0.0001")
        net = shared_cost + residual_cost - revenue
        amount = net.quantize(Decimal("0.01"))
        co2 = (Decimal(r) * Decimal("0.366")).quantize(Decimal("0.001"))
        details: dict[str, Any] = {
            "quality": "L1",
            "quarter_hours": n,
            "substitute_quarter_hours": {"L2": 0, "L3": 0},
            "own_generation_used_wh": o,
            "participation_pct": 100,
            "money_eur": {
                "shared_cost_eur": str(shared_cost.quantize(Decimal("0.01"))),
                "residual_cost_eur": str(residual_cost.quantize(Decimal("0.01"))),
                "network_fee_eur": "0.00",
                "shared_revenue_eur": str(revenue.quantize(Decimal("0.01"))),
            },
            "net_exact_eur": str(net),
        }
        if with_lines:
            details["lines"] = {
                "qh_start": [(day_start + q * timedelta(minutes=15)).isoformat() for q in range(n)],
                "quality": ["L1"] * n,
                "consumption_wh": cons[:n],
                "generation_wh": gen[:n],
                "received_wh": recv[:n],
                "delivered_wh": deliv[:n],
            }
        return _Variant(c, g, r, d, residual, surplus, amount, co2, json.dumps(details))

    return [upto(n, False) for n in throughs] + [upto(n_qh, True)]


@dataclass(frozen=True, slots=True)
class _Run:
    run_id: int
    version: int
    start: datetime
    end: datetime
    created_at: datetime
    reason: str
    details_json: str
    #: statement shape v for member k is variants[k % VARIANTS]
    variants: list[_Variant]


def _runs(ds: Dataset) -> Iterator[_Run]:
    """Every run of the year in the order the service appends them: per day the provisional
    versions, then the final one."""
    run_id = 0
    for n, day in enumerate(ds.day_list()):
        start, end = local_day_bounds(day, TZ)
        n_qh = int((end - start) / timedelta(minutes=15))
        throughs = [n_qh * (j + 1) // (ds.provisional + 1) for j in range(ds.provisional)]
        shapes = [_variants(start, n_qh, n * VARIANTS + v, throughs) for v in range(VARIANTS)]
        per = ds.members / VARIANTS
        for j, through in enumerate([*throughs, n_qh]):
            variants = [shape[j] for shape in shapes]
            final = j == len(throughs)
            totals = {
                "consumption_wh": int(sum(v.consumption_wh for v in variants) * per),
                "generation_wh": int(sum(v.generation_wh for v in variants) * per),
                "received_wh": int(sum(v.received_wh for v in variants) * per),
                "delivered_wh": int(sum(v.delivered_wh for v in variants) * per),
            }
            through_at = start + through * timedelta(minutes=15)
            details: dict[str, Any] = {
                "kind": "final" if final else "provisional",
                "day": day.isoformat(),
                "through": through_at.isoformat(),
                "quarter_hours": n_qh,
                "complete": final,
                "inputs_fingerprint": f"bench-{DATA_VERSION}-{day.isoformat()}-{j}",
                "quality": "L1",
                "missing_members": [],
                "substitute_quarter_hours": {},
                "totals_wh": totals,
            }
            run_id += 1
            local = through_at.astimezone(TZ)
            yield _Run(
                run_id=run_id,
                version=j + 1,
                start=start,
                end=end,
                created_at=end + timedelta(hours=1, minutes=15)
                if final
                else through_at + timedelta(minutes=1),
                reason="final" if final else f"provisional through {local:%H:%M}",
                details_json=json.dumps(details),
                variants=variants,
            )


async def _day_totals(url: str, backend: str) -> None:
    """Build the day totals the service would keep, with the store's own builder (the data
    went in around the store, as rows)."""
    started = time.perf_counter()
    async with Store(url) as store:
        read = await store.day_totals.ensure_zone(TZ.key, now=datetime.now(UTC))
    _log(f"{backend}: day totals from {read} intervals in {time.perf_counter() - started:.0f} s")


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
        for d in _runs(ds):
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
                _log(f"sqlite: {d.run_id} settlement runs")
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
    await _day_totals(f"sqlite+aiosqlite:///{building}", "sqlite")
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
        runs = 0
        for d in _runs(ds):
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
            runs = d.run_id
            if runs % 500 == 0:
                _log(f"postgresql: {runs} settlement runs")
        await con.execute(
            "SELECT setval(pg_get_serial_sequence('settlement_runs', 'id'), $1)", runs
        )
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
    await _day_totals(pg_url(name), "postgresql")
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
