"""Raw readings: idempotent batch writes, queries, and retention.

The key of a raw reading is ``(device_id, channel, ts)``. A batch is written in one
transaction with ``ON CONFLICT DO NOTHING`` on that key, so a redelivered MQTT message or a
replayed Modbus poll is harmless, and :meth:`ReadingRepository.write` returns only after
COMMIT: the ingest path may acknowledge its messages then (F5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from protocols.model import Quality, Reading, utc
from store.dialect import insert_ignoring
from store.engine import read_tx, write_tx
from store.outbox import Outbox, reading_line
from store.schema import raw_readings


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


class ReadingRepository:
    """Raw readings in one database; optionally mirrored through the outbox."""

    def __init__(self, engine: AsyncEngine, outbox: Outbox | None = None) -> None:
        self._engine = engine
        self._outbox = outbox

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
        async with write_tx(self._engine, f"write {len(unique)} readings") as conn:
            stmt = insert_ignoring(conn, raw_readings, "device_id", "channel", "ts").returning(
                raw_readings.c.device_id, raw_readings.c.channel, raw_readings.c.ts
            )
            result = await conn.execute(stmt, [_row(r) for r in unique.values()])
            inserted_keys = [(d, c, utc(t)) for d, c, t in result.all()]
            mirrored = dropped = 0
            if self._outbox is not None:
                lines = [
                    reading_line(unique[key]) for key in inserted_keys if unique[key].available
                ]
                dropped = await self._outbox.enqueue_in(conn, lines, now=now)
                mirrored = len(lines)
        return WriteResult(len(readings), len(inserted_keys), mirrored, dropped)

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
        self, device_id: str, channel: str, at_or_before: datetime | None = None
    ) -> Reading | None:
        """The newest reading of one channel (at or before an instant, if given)."""
        stmt = select(raw_readings).where(
            raw_readings.c.device_id == device_id, raw_readings.c.channel == channel
        )
        if at_or_before is not None:
            stmt = stmt.where(raw_readings.c.ts <= at_or_before)
        stmt = stmt.order_by(raw_readings.c.ts.desc()).limit(1)
        async with read_tx(self._engine, f"read latest {device_id}/{channel}") as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _reading(row)

    async def count(self, device_id: str | None = None) -> int:
        """How many raw readings are stored (of one device, if given)."""
        stmt = select(func.count()).select_from(raw_readings)
        if device_id is not None:
            stmt = stmt.where(raw_readings.c.device_id == device_id)
        async with read_tx(self._engine, "count readings") as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete raw readings with ``ts < cutoff``; returns how many. Intervals are kept."""
        async with write_tx(self._engine, f"purge readings before {cutoff.isoformat()}") as conn:
            result = await conn.execute(delete(raw_readings).where(raw_readings.c.ts < cutoff))
            return int(result.rowcount)
