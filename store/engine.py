"""Engines for SQLite (the embedded default) and PostgreSQL, and the write transaction.

SQLite is tuned for one busy writer and many readers: WAL journal, a busy timeout instead of
immediate "database is locked" errors, foreign keys on. Python's sqlite3 driver would start
transactions lazily (and never for SELECT); SQLAlchemy takes over instead, so a read-then-write
transaction is one real transaction. Write transactions start with ``BEGIN IMMEDIATE``: they
take the write lock up front, so two writers queue behind the busy timeout instead of one of
them failing when it upgrades a read lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from store.errors import AppendOnlyViolation, StoreError, StoreUnavailable

#: How long a SQLite writer waits for the lock before giving up, in s.
SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE_OPTION = "waldstadt_write"
#: SQLite reports these as OperationalError, yet retrying cannot help: the schema is wrong.
_PERMANENT_MARKERS = ("no such table", "no such column", "syntax error", "has no column")


def make_engine(url: str | URL, *, echo: bool = False) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        engine = create_async_engine(
            parsed, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        _tune_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        return create_async_engine(parsed, echo=echo, pool_pre_ping=True)
    raise StoreError("open database", f"unsupported backend {parsed.get_backend_name()!r}")


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}",
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def database_file(url: str | URL) -> Path | None:
    """The file a SQLite database lives in (``None``: in memory, or a server database)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file::memory:") else Path(database)


def server_name(url: str | URL) -> str | None:
    """``host-port-database`` of a server database, for file names (``None``: SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return None
    return f"{parsed.host or 'localhost'}-{parsed.port or 5432}-{parsed.database or ''}"


def describe(engine: AsyncEngine) -> str:
    """The engine's URL without the password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def translate(
    engine: AsyncEngine, operation: str, error: exc.SQLAlchemyError | OSError
) -> Exception:
    """Map a database error onto the Waldstadt tree; the caller raises it ``from`` error.

    asyncpg lets socket errors (refused, reset, timeout) through as plain ``OSError``; they
    mean the server is away, as do SQLite's lock and open errors.
    """
    if isinstance(error, OSError):
        return StoreUnavailable(describe(engine), f"{operation}: {error!r}")
    text = str(getattr(error, "orig", None) or error)
    if "append-only" in text:
        return AppendOnlyViolation(operation, text)
    if isinstance(error, exc.DBAPIError):
        permanent = any(marker in text for marker in _PERMANENT_MARKERS)
        if not permanent and (
            error.connection_invalidated
            or isinstance(error, exc.OperationalError | exc.InterfaceError)
        ):
            return StoreUnavailable(describe(engine), f"{operation}: {text}")
        return StoreError(operation, text)
    if isinstance(error, exc.StatementError):
        # raised before the database saw anything, e.g. a refused value in a bind parameter
        return StoreError(operation, text)
    return StoreUnavailable(describe(engine), f"{operation}: {text}")


#: Errors of the raw drivers (aiosqlite raises ``sqlite3``'s, asyncpg its own) that fast
#: paths bypassing SQLAlchemy's cursor may see; :func:`translate_driver` maps them.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # a connection the server terminated can be caught mid-protocol ("cannot switch to
    # state …; another operation is in progress"): as good as lost
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
    exc.SQLAlchemyError,
)


def translate_driver(engine: AsyncEngine, operation: str, error: BaseException) -> Exception:
    """Like :func:`translate`, for the :data:`DRIVER_ERRORS`."""
    if isinstance(error, exc.SQLAlchemyError | OSError):
        return translate(engine, operation, error)
    text = str(error)
    if isinstance(error, sqlite3.Error):
        permanent = any(marker in text for marker in _PERMANENT_MARKERS)
        if isinstance(error, sqlite3.OperationalError) and not permanent:
            return StoreUnavailable(describe(engine), f"{operation}: {text}")
        return StoreError(operation, text)
    if isinstance(error, asyncpg.PostgresError) and not isinstance(
        error,
        asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError
        | asyncpg.CrashShutdownError,
    ):
        return StoreError(operation, text)
    # connection lost or refused, server shutting down, timeout
    return StoreUnavailable(describe(engine), f"{operation}: {text or type(error).__name__}")


async def open_write_connection(engine: AsyncEngine, operation: str) -> AsyncConnection:
    """A connection whose transactions are write transactions (``BEGIN IMMEDIATE`` on
    SQLite), for a caller that holds it across many of them (and closes it)."""
    try:
        conn = await engine.connect()
    except (exc.SQLAlchemyError, OSError) as error:
        raise translate(engine, operation, error) from error
    try:
        await conn.execution_options(**{_WRITE_OPTION: True})
    except (exc.SQLAlchemyError, OSError) as error:
        await conn.close()
        raise translate(engine, operation, error) from error
    return conn


@contextlib.asynccontextmanager
async def write_tx(engine: AsyncEngine, operation: str) -> AsyncIterator[AsyncConnection]:
    """One write transaction; commits on exit, translates database errors.

    Returns (exits) only after COMMIT has succeeded, so callers may acknowledge what they
    wrote to whoever sent it.
    """
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn
    except (exc.SQLAlchemyError, OSError) as error:
        raise translate(engine, operation, error) from error


@contextlib.asynccontextmanager
async def read_tx(engine: AsyncEngine, operation: str) -> AsyncIterator[AsyncConnection]:
    """One read transaction (a consistent snapshot on both backends)."""
    try:
        async with engine.connect() as conn, conn.begin():
            yield conn
    except (exc.SQLAlchemyError, OSError) as error:
        raise translate(engine, operation, error) from error
