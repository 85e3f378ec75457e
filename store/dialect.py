"""The one place that picks a dialect-specific INSERT (for ``ON CONFLICT DO NOTHING``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignoring(conn: AsyncConnection, table: Table, *conflict_columns: str) -> Any:
    """``INSERT … ON CONFLICT (conflict_columns) DO NOTHING`` for the connection's dialect.

    Returns the dialect's insert construct (SQLite and PostgreSQL share the method names,
    but not a common type, hence ``Any``).
    """
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=list(conflict_columns)
        )
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    raise RuntimeError(f"no ON CONFLICT insert for dialect {name!r}")


async def serialize_on(conn: AsyncConnection, key: str) -> None:
    """Hold a lock named ``key`` until the transaction ends (read-then-append sections).

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, the write
    transaction already holds the database's one write lock (``BEGIN IMMEDIATE``).
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )
