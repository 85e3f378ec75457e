"""Alembic environment: runs on a connection handed in by :mod:`store.migrate`, or opens one.

Online runs take a lock first, so that processes starting together migrate one after the other:
a PostgreSQL advisory lock, or SQLite's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from store.engine import make_engine
from store.schema import metadata

#: Arbitrary, fixed key of the PostgreSQL advisory lock held while migrating.
MIGRATION_LOCK_KEY = 7_242_011

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()


async def _run_with_new_engine(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(waldstadt_write=True)
            await conn.run_sync(_configure)
            await conn.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic: give sqlalchemy.url or a connection in config.attributes")
    asyncio.run(_run_with_new_engine(url))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
