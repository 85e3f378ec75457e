"""Commands sent to devices: idempotent by ``command_id``, with an expiry (F3, F8).

A command is inserted once; inserting the same id again is a no-op that reports the stored
command, so a restarted controller re-applying its setpoints under the same ids (F3) does not
duplicate them. Status moves forward (pending → sent → acknowledged / failed / expired /
superseded); this table is operational state, not a record — the audit log is the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.dialect import insert_ignoring
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import COMMAND_STATUSES, commands

FINAL_STATUSES = frozenset({"acknowledged", "failed", "expired", "superseded"})


@dataclass(frozen=True, slots=True)
class Command:
    command_id: str
    target: str
    value: Any
    issued_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.expires_at <= self.issued_at:
            raise ValueError(
                f"command {self.command_id} for {self.target}: expires_at "
                f"{self.expires_at.isoformat()} is not after issued_at {self.issued_at.isoformat()}"
            )


@dataclass(frozen=True, slots=True)
class StoredCommand:
    command: Command
    status: str
    status_changed_at: datetime
    detail: str | None


def _stored(row: object) -> StoredCommand:
    r = row._mapping  # type: ignore[attr-defined]
    cmd = Command(r["command_id"], r["target"], r["value"], r["issued_at"], r["expires_at"])
    return StoredCommand(cmd, r["status"], r["status_changed_at"], r["detail"])


class CommandRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, command: Command) -> tuple[bool, StoredCommand]:
        """Store a pending command; ``(False, stored)`` when the id was already there."""
        async with write_tx(self._engine, f"insert command {command.command_id}") as conn:
            stmt = insert_ignoring(conn, commands, "command_id").returning(commands.c.id)
            inserted = (
                await conn.execute(
                    stmt,
                    {
                        "command_id": command.command_id,
                        "target": command.target,
                        "value": command.value,
                        "issued_at": command.issued_at,
                        "expires_at": command.expires_at,
                        "status": "pending",
                        "status_changed_at": command.issued_at,
                        "detail": None,
                    },
                )
            ).first()
            row = (
                await conn.execute(
                    select(commands).where(commands.c.command_id == command.command_id)
                )
            ).one()
        return inserted is not None, _stored(row)

    async def set_status(
        self, command_id: str, status: str, *, now: datetime, detail: str | None = None
    ) -> StoredCommand:
        """Move a command to ``status``; a command in a final status stays there."""
        if status not in COMMAND_STATUSES:
            raise StoreError(f"set status of command {command_id}", f"unknown status {status!r}")
        async with write_tx(self._engine, f"set status of command {command_id}") as conn:
            await conn.execute(
                update(commands)
                .where(
                    commands.c.command_id == command_id,
                    commands.c.status.not_in(sorted(FINAL_STATUSES)),
                )
                .values(status=status, status_changed_at=now, detail=detail)
            )
            row = (
                await conn.execute(select(commands).where(commands.c.command_id == command_id))
            ).first()
        if row is None:
            raise StoreError(f"set status of command {command_id}", "no such command")
        return _stored(row)

    async def get(self, command_id: str) -> StoredCommand | None:
        async with read_tx(self._engine, f"read command {command_id}") as conn:
            row = (
                await conn.execute(select(commands).where(commands.c.command_id == command_id))
            ).first()
        return None if row is None else _stored(row)

    async def live(
        self, now: datetime, targets: Sequence[str] | None = None
    ) -> list[StoredCommand]:
        """Commands not yet expired and not final: what a restarted controller re-applies."""
        stmt = select(commands).where(
            commands.c.expires_at > now, commands.c.status.not_in(sorted(FINAL_STATUSES))
        )
        if targets is not None:
            stmt = stmt.where(commands.c.target.in_(list(targets)))
        async with read_tx(self._engine, "read live commands") as conn:
            rows = (await conn.execute(stmt.order_by(commands.c.issued_at))).all()
        return [_stored(row) for row in rows]

    async def expire(self, now: datetime) -> int:
        """Mark every non-final command past its expiry as ``expired``; returns how many."""
        async with write_tx(self._engine, "expire commands") as conn:
            result = await conn.execute(
                update(commands)
                .where(
                    commands.c.expires_at <= now,
                    commands.c.status.not_in(sorted(FINAL_STATUSES)),
                )
                .values(status="expired", status_changed_at=now)
            )
            return int(result.rowcount)
