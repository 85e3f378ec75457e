"""Database fixtures, a pytest plugin loaded by tests/conftest.py: every test that uses them
runs on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (user ``postgres``, trust auth). If it cannot be
reached the PostgreSQL cases FAIL: CI starts PostgreSQL, so its absence is a broken
environment, not a reason to skip.

* ``db_url`` -- an empty database of the test's own (a fresh SQLite file; a fresh PostgreSQL
  database, dropped afterwards): for migration tests and tests that open Stores themselves.
* ``store_url`` / ``store`` / ``open_store`` -- a migrated database. On PostgreSQL it is one
  database per session, migrated once and emptied after every test (with the append-only
  triggers switched off for that cleanup only), which saves a create-and-migrate per test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from store import Store, StoreSettings
from store.schema import metadata

PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))
PG_ADMIN_DB = "test"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", database=PG_ADMIN_DB, timeout=10
        )
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} not reachable: {exc!r}")


async def create_pg_database() -> str:
    name = f"waldstadt_t_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def drop_pg_database(name: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'waldstadt.db'}"
        return
    name = await create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await drop_pg_database(name)


@pytest.fixture(scope="session")
def pg_session_db() -> Iterator[str]:
    """One migrated PostgreSQL database for the session (created lazily, dropped at the end)."""

    async def create() -> str:
        name = await create_pg_database()
        async with Store(pg_url(name)):
            pass
        return name

    # Requested from inside async fixtures, where a loop is running: use a loop of our own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        name = pool.submit(asyncio.run, create()).result()
        try:
            yield name
        finally:
            pool.submit(asyncio.run, drop_pg_database(name)).result()


async def _empty_pg_database(name: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=name)
    try:
        tables = ", ".join(metadata.tables)
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '30s'")
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of a migrated database that is empty at the start of the test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'waldstadt.db'}"
        return
    name = request.getfixturevalue("pg_session_db")
    try:
        yield pg_url(name)
    finally:
        await _empty_pg_database(name)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store(store_url) as opened:
        yield opened


@pytest.fixture
def open_store(store_url: str) -> Callable[..., Store]:
    """Open (another) Store on the same database, e.g. to play a second process."""

    def make(settings: StoreSettings | None = None) -> Store:
        return Store(store_url, settings=settings)

    return make
