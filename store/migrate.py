"""Schema migrations, runnable from code: ``store.migrate.upgrade(url)``.

No ``alembic.ini`` is needed: the configuration is built here and points at the packaged
``store/migrations`` directory. The async functions run Alembic on a connection of the
caller's engine (inside ``run_sync``), so they work inside a running event loop; the plain
functions are for scripts and the CLI and work with or without a running loop.

From a shell, the same thing: ``python -m store.migrate upgrade sqlite+aiosqlite:///w.db``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from store.engine import make_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the packaged migrations (``url`` for offline/CLI use)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def _with_connection(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg)

    # Alembic keeps its running context in module globals, so two migrations in one process
    # (two Stores opened at once, or a CLI call in another thread) must not interleave. The
    # lock is polled rather than awaited in a thread, so cancelling a waiter leaks nothing.
    while True:
        if _ALEMBIC_LOCK.acquire(blocking=False):
            break
        await asyncio.sleep(0.01)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(waldstadt_write=True)
            await conn.run_sync(run)
            await conn.commit()
    finally:
        _ALEMBIC_LOCK.release()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest)."""
    await _with_connection(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade_engine(engine: AsyncEngine, revision: str) -> None:
    """Downgrade to ``revision`` (``"base"`` removes every table this schema created)."""
    await _with_connection(engine, lambda cfg: command.downgrade(cfg, revision))


async def current_revision_engine(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def _on_url(url: str, action: Callable[[AsyncEngine], Coroutine[Any, Any, Any]]) -> Any:
    engine = make_engine(url)
    try:
        return await action(engine)
    finally:
        await engine.dispose()


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a sync caller in async code): run in a fresh loop
    # on a worker thread so as not to nest loops.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest)."""
    _run(_on_url(url, lambda engine: upgrade_engine(engine, revision)))


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision``."""
    _run(_on_url(url, lambda engine: downgrade_engine(engine, revision)))


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at."""
    result: str | None = _run(_on_url(url, current_revision_engine))
    return result


def main(argv: list[str]) -> int:
    usage = "usage: python -m store.migrate {upgrade|downgrade|current} URL [REVISION]"
    if len(argv) < 2 or argv[0] not in {"upgrade", "downgrade", "current"}:
        print(usage, file=sys.stderr)
        return 2
    verb, url, *rest = argv
    if verb == "upgrade":
        upgrade(url, rest[0] if rest else "head")
    elif verb == "downgrade":
        if not rest:
            print(usage, file=sys.stderr)
            return 2
        downgrade(url, rest[0])
    else:
        print(current_revision(url) or "(none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
