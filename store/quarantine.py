"""Quarantined readings: values that failed the plausibility checks, kept apart with the reason.

A quarantined reading never reaches ``raw_readings``, so metering and settlement never see it
and it bills nothing. It is kept (table ``quarantined_readings``) so that an operator can see
what arrived, from where and why it was refused: the device, the channel, the instant the
reading claimed (which may be absurd, year 9999), the value as text (it may not be a number
at all), the reason (``counter_decrease``, ``power_above_rating``, ``ts_out_of_window``,
``unknown_device`` …) and a sentence of detail. Quarantine rows follow the raw readings'
retention (:meth:`QuarantineRepository.purge_older_than`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.engine import read_tx, write_tx
from store.schema import quarantined_readings

#: Longest raw value and detail kept, in characters (the columns' sizes).
RAW_VALUE_CHARS = 256
DETAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class QuarantinedReading:
    """One reading refused by the plausibility checks. ``received_at`` is the service's
    clock when it arrived; ``source`` where it came from (``mqtt``, ``modbus``)."""

    received_at: datetime
    source: str
    device_id: str
    channel: str | None
    ts: datetime | None
    raw_value: str | None
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class StoredQuarantine:
    id: int
    reading: QuarantinedReading


def _row(q: QuarantinedReading) -> dict[str, object]:
    return {
        "received_at": q.received_at,
        "source": q.source[:32],
        "device_id": q.device_id[:128],
        "channel": None if q.channel is None else q.channel[:64],
        "ts": q.ts,
        "raw_value": None if q.raw_value is None else q.raw_value[:RAW_VALUE_CHARS],
        "reason": q.reason[:64],
        "detail": q.detail[:DETAIL_CHARS],
    }


def _stored(row: object) -> StoredQuarantine:
    r = row._mapping  # type: ignore[attr-defined]
    return StoredQuarantine(
        r["id"],
        QuarantinedReading(
            r["received_at"],
            r["source"],
            r["device_id"],
            r["channel"],
            r["ts"],
            r["raw_value"],
            r["reason"],
            r["detail"],
        ),
    )


class QuarantineRepository:
    """The ``quarantined_readings`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, readings: Sequence[QuarantinedReading]) -> int:
        """Keep these readings apart, in one transaction; returns how many."""
        if not readings:
            return 0
        async with write_tx(self._engine, f"quarantine {len(readings)} readings") as conn:
            await conn.execute(insert(quarantined_readings), [_row(q) for q in readings])
        return len(readings)

    async def recent(
        self, *, device_id: str | None = None, reason: str | None = None, limit: int = 100
    ) -> list[StoredQuarantine]:
        """The newest quarantined readings (of one device, for one reason), newest first."""
        stmt = select(quarantined_readings)
        if device_id is not None:
            stmt = stmt.where(quarantined_readings.c.device_id == device_id)
        if reason is not None:
            stmt = stmt.where(quarantined_readings.c.reason == reason)
        stmt = stmt.order_by(quarantined_readings.c.id.desc()).limit(limit)
        async with read_tx(self._engine, "read quarantined readings") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_stored(r) for r in rows]

    async def counts(self, since: datetime | None = None) -> dict[str, int]:
        """How many readings were quarantined per reason (received at or after ``since``)."""
        c = quarantined_readings.c
        stmt = select(c.reason, func.count()).group_by(c.reason)
        if since is not None:
            stmt = stmt.where(c.received_at >= since)
        async with read_tx(self._engine, "count quarantined readings") as conn:
            rows = (await conn.execute(stmt)).all()
        return {reason: int(n) for reason, n in rows}

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete what was received before ``cutoff``; returns how many."""
        what = f"purge quarantined readings before {cutoff.isoformat()}"
        async with write_tx(self._engine, what) as conn:
            result = await conn.execute(
                delete(quarantined_readings).where(quarantined_readings.c.received_at < cutoff)
            )
            return int(result.rowcount)


__all__ = ["QuarantineRepository", "QuarantinedReading", "StoredQuarantine"]
