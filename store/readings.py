"""Raw readings: idempotent batch writes, queries, and retention.

The key of a raw reading is ``(device_id, channel, ts)``. A batch is written in one
transaction with ``ON CONFLICT DO NOTHING`` on that key, so a redelivered MQTT message or a
replayed Modbus poll is harmless, and :meth:`ReadingRepository.write` returns only after
COMMIT: the ingest path may acknowledge its messages then (F5).

Writes are the ingest hot path, so without the InfluxDB mirror they bypass SQLAlchemy's
statement layer (about 27 µs per reading) and hand tuple rows to the driver under
SQLAlchemy's connection: on SQLite one ``executemany`` between ``BEGIN IMMEDIATE`` and
``COMMIT``; on PostgreSQL one ``INSERT … SELECT FROM unnest(…)`` (one statement: atomic,
one round trip). Both count the inserted rows without ``RETURNING``. With the mirror on, the
inserted rows are needed and the write goes through SQLAlchemy with ``RETURNING``, the outbox
entries in the same transaction. A :class:`ReadingSession` keeps one connection for many
batches (the group-commit writer's), saving the pool's checkout and PostgreSQL's pre-ping.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Row, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.readings import Quality, Reading, utc
from store.dialect import insert_ignoring
from store.engine import (
    DRIVER_ERRORS,
    open_write_connection,
    read_tx,
    translate,
    translate_driver,
    write_tx,
)
from store.outbox import Outbox, reading_line
from store.schema import raw_readings

_COLUMNS = "device_id, channel, ts, value, unit, quality"
_KEY = "device_id, channel, ts"
#: One statement for the whole batch, its rows in one JSON array: SQLite parses it without
#: Python's GIL, whereas ``executemany`` hands the GIL back and forth with the event loop for
#: every row (measured: ~20 µs less CPU per message on the ingest path). JSON numbers come
#: back as the very same doubles. ``WHERE true`` keeps ``ON`` from reading as a join.
_SQLITE_INSERT = (
    f"INSERT INTO {raw_readings.name} ({_COLUMNS}) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    f"json_extract(value, '$[5]') FROM json_each(?) WHERE true ON CONFLICT ({_KEY}) DO NOTHING"
)
_PG_INSERT = (
    f"INSERT INTO {raw_readings.name} ({_COLUMNS}) "
    "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[], $4::float8[], "
    f"$5::varchar[], $6::varchar[]) ON CONFLICT ({_KEY}) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch did: ``inserted`` new rows, the rest of ``received`` were duplicates."""

    received: int
    inserted: int
    mirrored: int = 0
    mirror_dropped: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def sqlite_ts(ts: datetime) -> str:
    """A UTC instant as SQLAlchemy's SQLite ``DATETIME`` stores it (naive UTC,
    ``YYYY-MM-DD HH:MM:SS.ffffff``): the fast path must write the very text the queries
    compare with. ``ts`` is a reading's, hence UTC."""
    return ts.isoformat(" ", "microseconds")[:26]


#: Use aiosqlite's private hook when it is there (tests switch it off to cover the fallback).
_ONE_HOP = True


def _sqlite_transaction(conn: sqlite3.Connection, rows: str) -> int:
    """Runs in aiosqlite's thread: the batch in one write transaction; inserted rows."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        inserted = conn.execute(_SQLITE_INSERT, (rows,)).rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return inserted


def _row(reading: Reading) -> dict[str, object]:
    return {
        "device_id": reading.device_id,
        "channel": reading.channel,
        "ts": reading.ts,
        "value": reading.value,
        "unit": reading.unit,
        "quality": reading.quality.value,
    }


def _reading(row: Row[Any]) -> Reading:
    r = row._mapping
    return Reading(
        r["device_id"], r["channel"], r["value"], r["unit"], r["ts"], Quality(r["quality"])
    )


class ReadingSession:
    """``async with repository.session() as s: await s.write(...)`` -- batch writes over one
    connection, held until the session is closed. A failed write discards the connection
    (the next write opens a new one), so a database that went away and came back is picked
    up again. One caller at a time: the session is not safe for concurrent writes."""

    def __init__(self, engine: AsyncEngine, outbox: Outbox | None) -> None:
        self._engine = engine
        self._outbox = outbox
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> ReadingSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def write(self, readings: Sequence[Reading], *, now: datetime) -> WriteResult:
        """Insert a batch in one transaction; returns after commit.

        Readings already stored (same device, channel and ts) are skipped, also within the
        batch (the first one wins). When mirroring is on, the newly inserted readings with a
        value are queued in the outbox in the same transaction.
        """
        unique: dict[tuple[str, str, datetime], Reading] = {}
        for reading in readings:
            unique.setdefault((reading.device_id, reading.channel, reading.ts), reading)
        if not unique:
            return WriteResult(len(readings), 0)
        operation = f"write {len(unique)} readings"
        conn = self._conn
        if conn is None:
            conn = self._conn = await open_write_connection(self._engine, operation)
        try:
            if self._outbox is not None:
                return await self._write_mirrored(conn, unique, len(readings), now, operation)
            if conn.dialect.name == "sqlite":
                inserted = await self._insert_sqlite(conn, unique.values())
            else:
                inserted = await self._insert_postgresql(conn, unique.values())
        except BaseException as error:
            await self._discard()
            if isinstance(error, DRIVER_ERRORS):
                raise translate_driver(self._engine, operation, error) from error
            raise
        return WriteResult(len(readings), inserted)

    @staticmethod
    async def _insert_sqlite(conn: AsyncConnection, readings: Iterable[Reading]) -> int:
        rows = json.dumps(
            [
                (r.device_id, r.channel, sqlite_ts(r.ts), r.value, r.unit, r.quality.value)
                for r in readings
            ],
            allow_nan=False,
        )
        db = (await conn.get_raw_connection()).driver_connection
        assert db is not None
        # aiosqlite runs each call in its thread; one hop for the whole transaction instead
        # of three (BEGIN, INSERT, COMMIT) when its (private) hook is there
        run_in_thread = getattr(db, "_execute", None)
        try:
            handle = getattr(db, "_conn", None)
        except ValueError:  # aiosqlite: no active connection
            handle = None
        if _ONE_HOP and run_in_thread is not None and isinstance(handle, sqlite3.Connection):
            inserted: int = await run_in_thread(_sqlite_transaction, handle, rows)
            return inserted
        await db.execute("BEGIN IMMEDIATE")
        cursor = await db.execute(_SQLITE_INSERT, (rows,))
        inserted = int(cursor.rowcount)
        await db.commit()
        return inserted

    @staticmethod
    async def _insert_postgresql(conn: AsyncConnection, readings: Iterable[Reading]) -> int:
        devices: list[str] = []
        channels: list[str] = []
        stamps: list[datetime] = []
        values: list[float | None] = []
        units: list[str] = []
        qualities: list[str] = []
        for r in readings:
            devices.append(r.device_id)
            channels.append(r.channel)
            stamps.append(r.ts)
            values.append(r.value)
            units.append(r.unit)
            qualities.append(r.quality.value)
        db = (await conn.get_raw_connection()).driver_connection
        assert db is not None
        status = await db.execute(_PG_INSERT, devices, channels, stamps, values, units, qualities)
        return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"

    async def _write_mirrored(
        self,
        conn: AsyncConnection,
        unique: dict[tuple[str, str, datetime], Reading],
        received: int,
        now: datetime,
        operation: str,
    ) -> WriteResult:
        assert self._outbox is not None
        try:
            async with conn.begin():
                stmt = insert_ignoring(conn, raw_readings, "device_id", "channel", "ts")
                stmt = stmt.returning(
                    raw_readings.c.device_id, raw_readings.c.channel, raw_readings.c.ts
                )
                result = await conn.execute(stmt, [_row(r) for r in unique.values()])
                inserted_keys = [(d, c, utc(t)) for d, c, t in result.all()]
                lines = [
                    reading_line(unique[key]) for key in inserted_keys if unique[key].available
                ]
                dropped = await self._outbox.enqueue_in(conn, lines, now=now)
        except (SQLAlchemyError, OSError) as error:
            raise translate(self._engine, operation, error) from error
        return WriteResult(received, len(inserted_keys), len(lines), dropped)


class ReadingRepository:
    """Raw readings in one database; optionally mirrored through the outbox."""

    def __init__(self, engine: AsyncEngine, outbox: Outbox | None = None) -> None:
        self._engine = engine
        self._outbox = outbox

    def session(self) -> ReadingSession:
        """Batch writes over one held connection (for a writer that writes continuously)."""
        return ReadingSession(self._engine, self._outbox)

    async def write(self, readings: Sequence[Reading], *, now: datetime) -> WriteResult:
        """Insert a batch in one transaction; returns after commit (see
        :meth:`ReadingSession.write`)."""
        async with self.session() as session:
            return await session.write(readings, now=now)

    async def between(
        self, device_id: str, channel: str, start: datetime, end: datetime
    ) -> list[Reading]:
        """Readings of one channel with ``start <= ts < end``, oldest first."""
        stmt = (
            select(raw_readings)
            .where(
                raw_readings.c.device_id == device_id,
                raw_readings.c.channel == channel,
                raw_readings.c.ts >= start,
                raw_readings.c.ts < end,
            )
            .order_by(raw_readings.c.ts)
        )
        async with read_tx(self._engine, f"read readings of {device_id}/{channel}") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_reading(row) for row in rows]

    async def latest(
        self,
        device_id: str,
        channel: str,
        at_or_before: datetime | None = None,
        *,
        with_value: bool = False,
    ) -> Reading | None:
        """The newest reading of one channel (at or before an instant, if given; with a
        value, not *unavailable*, if asked)."""
        stmt = select(raw_readings).where(
            raw_readings.c.device_id == device_id, raw_readings.c.channel == channel
        )
        if at_or_before is not None:
            stmt = stmt.where(raw_readings.c.ts <= at_or_before)
        if with_value:
            stmt = stmt.where(raw_readings.c.value.is_not(None))
        stmt = stmt.order_by(raw_readings.c.ts.desc()).limit(1)
        async with read_tx(self._engine, f"read latest {device_id}/{channel}") as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _reading(row)

    async def first_after(self, device_id: str, channel: str, after: datetime) -> Reading | None:
        """The oldest reading of one channel with a value and ``ts > after`` (the neighbour a
        late reading is checked against)."""
        stmt = (
            select(raw_readings)
            .where(
                raw_readings.c.device_id == device_id,
                raw_readings.c.channel == channel,
                raw_readings.c.ts > after,
                raw_readings.c.value.is_not(None),
            )
            .order_by(raw_readings.c.ts)
            .limit(1)
        )
        async with read_tx(self._engine, f"read next {device_id}/{channel}") as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _reading(row)

    async def count(self, device_id: str | None = None) -> int:
        """How many raw readings are stored (of one device, if given)."""
        stmt = select(func.count()).select_from(raw_readings)
        if device_id is not None:
            stmt = stmt.where(raw_readings.c.device_id == device_id)
        async with read_tx(self._engine, "count readings") as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def delete_devices(self, device_ids: Sequence[str]) -> int:
        """Delete every raw reading of these devices (a member's erasure); returns how many.
        Intervals, made from them, are not touched."""
        if not device_ids:
            return 0
        what = f"delete the readings of {len(device_ids)} devices"
        async with write_tx(self._engine, what) as conn:
            result = await conn.execute(
                delete(raw_readings).where(raw_readings.c.device_id.in_(list(device_ids)))
            )
            return int(result.rowcount)

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete raw readings with ``ts < cutoff``; returns how many. Intervals are kept."""
        async with write_tx(self._engine, f"purge readings before {cutoff.isoformat()}") as conn:
            result = await conn.execute(delete(raw_readings).where(raw_readings.c.ts < cutoff))
            return int(result.rowcount)
