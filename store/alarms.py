"""Alarms as an append-only stream of raise and clear events.

An alarm is identified by its ``alarm_key`` (e.g. ``"device:inv-7:communication_lost"``); it
is active while its newest event is a raise. Raising an active alarm again, or clearing one
that is not active, appends nothing, so a decider may report its state every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.engine import read_tx, write_tx
from store.schema import alarm_events

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    id: int
    ts: datetime
    alarm_key: str
    source: str
    kind: str
    severity: str
    event: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _event(row: object) -> AlarmEvent:
    r = row._mapping  # type: ignore[attr-defined]
    return AlarmEvent(**{k: r[k] for k in AlarmEvent.__dataclass_fields__})


async def _newest(conn: AsyncConnection, alarm_key: str) -> AlarmEvent | None:
    row = (
        await conn.execute(
            select(alarm_events)
            .where(alarm_events.c.alarm_key == alarm_key)
            .order_by(alarm_events.c.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else _event(row)


class AlarmRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def raise_alarm(
        self,
        alarm_key: str,
        *,
        source: str,
        kind: str,
        severity: Severity,
        message: str,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> AlarmEvent | None:
        """Append a raise event unless the alarm is already active; returns the new event."""
        return await self._append(
            alarm_key, "raise", source, kind, severity, message, now, details or {}
        )

    async def clear_alarm(
        self, alarm_key: str, *, message: str, now: datetime
    ) -> AlarmEvent | None:
        """Append a clear event if the alarm is active; returns the new event."""
        return await self._append(alarm_key, "clear", "", "", "info", message, now, {})

    async def _append(
        self,
        alarm_key: str,
        event: str,
        source: str,
        kind: str,
        severity: str,
        message: str,
        now: datetime,
        details: dict[str, Any],
    ) -> AlarmEvent | None:
        async with write_tx(self._engine, f"{event} alarm {alarm_key}") as conn:
            newest = await _newest(conn, alarm_key)
            active = newest is not None and newest.event == "raise"
            if (event == "raise") == active:
                return None
            if event == "clear" and newest is not None:
                source, kind, severity = newest.source, newest.kind, newest.severity
            row = (
                await conn.execute(
                    insert(alarm_events).returning(*alarm_events.c),
                    {
                        "ts": now,
                        "alarm_key": alarm_key,
                        "source": source,
                        "kind": kind,
                        "severity": severity,
                        "event": event,
                        "message": message,
                        "details": details,
                    },
                )
            ).one()
        return _event(row)

    async def active(self) -> list[AlarmEvent]:
        """The raise event of every active alarm, oldest first."""
        newest_ids = (
            select(func.max(alarm_events.c.id).label("id"))
            .group_by(alarm_events.c.alarm_key)
            .subquery()
        )
        stmt = (
            select(alarm_events)
            .join(newest_ids, alarm_events.c.id == newest_ids.c.id)
            .where(alarm_events.c.event == "raise")
            .order_by(alarm_events.c.id)
        )
        async with read_tx(self._engine, "read active alarms") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_event(row) for row in rows]

    async def history(self, since: datetime, limit: int = 1000) -> list[AlarmEvent]:
        """Events at or after ``since``, oldest first."""
        async with read_tx(self._engine, "read alarm history") as conn:
            rows = (
                await conn.execute(
                    select(alarm_events)
                    .where(alarm_events.c.ts >= since)
                    .order_by(alarm_events.c.id)
                    .limit(limit)
                )
            ).all()
        return [_event(row) for row in rows]

    async def events_between(
        self, start: datetime, end: datetime, limit: int = 1000
    ) -> list[AlarmEvent]:
        """Raise and clear events in ``[start, end)``, newest first."""
        async with read_tx(self._engine, "read alarm events") as conn:
            rows = (
                await conn.execute(
                    select(alarm_events)
                    .where(alarm_events.c.ts >= start, alarm_events.c.ts < end)
                    .order_by(alarm_events.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [_event(r) for r in rows]
