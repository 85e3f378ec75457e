"""Fixtures: every repository test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (user ``postgres``, trust auth). Each test gets a
fresh database of its own, dropped afterwards. If the server cannot be reached the
PostgreSQL cases FAIL: CI starts PostgreSQL, so its absence is a broken environment, not a
reason to skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from store import Store, StoreSettings

PG_HOST = os.environ.get("WALDSTADT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("WALDSTADT_TEST_PG_PORT", "5432"))
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


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    async with Store(db_url) as opened:
        yield opened


@pytest.fixture
def open_store(db_url: str) -> Callable[..., Store]:
    """Open (another) Store on the same database, e.g. to play a second process."""

    def make(settings: StoreSettings | None = None) -> Store:
        return Store(db_url, settings=settings)

    return make
