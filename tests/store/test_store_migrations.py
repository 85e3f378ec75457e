"""Migrations: ``upgrade head`` gives exactly the schema of the metadata, on both backends,
installs the append-only triggers, and ``downgrade base`` removes everything again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from store import Store, migrate
from store.engine import make_engine
from store.errors import StoreError
from store.schema import APPEND_ONLY_TABLES, metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _triggers(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return {row[0] for row in connection.exec_driver_sql(sql)}


async def test_upgrade_gives_the_metadata_schema_and_downgrade_removes_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert await migrate.current_revision_engine(engine) is None
        await migrate.upgrade_engine(engine)
        assert await migrate.current_revision_engine(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(_tables) >= set(metadata.tables)
            triggers = await conn.run_sync(_triggers)
        for table in APPEND_ONLY_TABLES:
            assert any(t.startswith(table) for t in triggers), f"no trigger on {table}"

        await migrate.downgrade_engine(engine, "base")
        assert await migrate.current_revision_engine(engine) is None
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) & set(metadata.tables) == set()
            assert await conn.run_sync(_triggers) == set()

        await migrate.upgrade_engine(engine)  # and up again, from scratch
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate.upgrade_engine(engine)
        await migrate.upgrade_engine(engine)
        assert await migrate.current_revision_engine(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


def test_the_sync_entry_point_works_from_plain_code(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert migrate.main(["upgrade", url]) == 0
    assert migrate.current_revision(url) == migrate.head_revision()
    assert migrate.main(["downgrade", url, "base"]) == 0
    assert migrate.current_revision(url) is None


async def test_the_sync_entry_point_works_inside_a_running_loop(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'in-loop.db'}"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


async def test_processes_starting_together_migrate_one_after_the_other(db_url: str) -> None:
    """Several Stores opened at once on an empty database: the lock lets exactly one migrate."""
    stores = [Store(db_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.__aenter__() for s in stores))
        engine = stores[0].engine
        assert await migrate.current_revision_engine(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in stores))


async def test_without_migrating_a_store_refuses_an_outdated_schema(db_url: str) -> None:
    with pytest.raises(StoreError, match=r"revision \(none\).*store.migrate.upgrade"):
        async with Store(db_url, migrate=False):
            pass
    await asyncio.to_thread(migrate.upgrade, db_url)
    async with Store(db_url, migrate=False) as store:
        assert await store.plans.get("c1", datetime(2026, 1, 1, tzinfo=UTC)) is None
