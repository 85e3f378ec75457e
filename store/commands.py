"""Commands sent to devices: idempotent by ``command_id``, with an expiry (F3, F8).

A command is inserted once; inserting the same id again is a no-op that reports the stored
command, so a restarted controller re-applying its setpoints under the same ids (F3) does not
duplicate them. Status moves forward (pending → sent → acknowledged / failed / expired /
superseded); this table is operational state, not a record — the audit log is the record.

:meth:`CommandRepository.record_many` is the journal's path: many commands, each inserted
and moved to its status, in one transaction (a quarter-hour's hundred new setpoints cost one
commit, not two hundred).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
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


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What became of a command: the status to record for it, with an optional detail."""

    command: Command
    status: str
    detail: str | None = None


def fold_outcomes(outcomes: Sequence[CommandOutcome]) -> dict[str, CommandOutcome]:
    """One outcome per command id, as if the outcomes were recorded one after the other:
    the first one carries the command, a later one moves its status unless the status reached
    so far is final. Raises :class:`StoreError` for an unknown status."""
    folded: dict[str, CommandOutcome] = {}
    for o in outcomes:
        if o.status not in COMMAND_STATUSES:
            raise StoreError(
                f"record command {o.command.command_id}", f"unknown status {o.status!r}"
            )
        seen = folded.get(o.command.command_id)
        if seen is None:
            folded[o.command.command_id] = o
        elif seen.status not in FINAL_STATUSES:
            folded[o.command.command_id] = CommandOutcome(seen.command, o.status, o.detail)
    return folded


def stored_command(row: object) -> StoredCommand:
    """A row of the commands table as a :class:`StoredCommand`."""
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
        return inserted is not None, stored_command(row)

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
        return stored_command(row)

    async def record_many(
        self, outcomes: Sequence[CommandOutcome], *, now: datetime
    ) -> frozenset[str]:
        """Insert every command whose id is not stored yet and move each command to its
        outcome's status (at ``now``), all in one transaction; returns the ids inserted.

        Idempotent on the command id: a stored command is never inserted twice, keeps its
        first value, and a command in a final status stays there. Recording a status the
        command already has changes nothing (not even ``status_changed_at``), so recording
        the same outcomes again is a no-op. Several outcomes for one id count in order (see
        :func:`fold_outcomes`).
        """
        folded = fold_outcomes(outcomes)
        if not folded:
            return frozenset()
        rows = [
            {
                "command_id": cid,
                "target": o.command.target,
                "value": o.command.value,
                "issued_at": o.command.issued_at,
                "expires_at": o.command.expires_at,
                "status": o.status,
                "status_changed_at": now,
                "detail": o.detail,
            }
            for cid, o in folded.items()
        ]
        async with write_tx(self._engine, f"record {len(rows)} command(s)") as conn:
            stmt = insert_ignoring(conn, commands, "command_id").returning(commands.c.command_id)
            inserted = frozenset((await conn.execute(stmt, rows)).scalars())
            moves = [
                {"b_id": cid, "b_status": o.status, "b_at": now, "b_detail": o.detail}
                for cid, o in folded.items()
                if cid not in inserted
            ]
            if moves:
                await conn.execute(
                    update(commands)
                    .where(
                        commands.c.command_id == bindparam("b_id"),
                        commands.c.status != bindparam("b_status"),
                        # not_in() expands its list, which executemany() cannot take
                        *(commands.c.status != final for final in sorted(FINAL_STATUSES)),
                    )
                    .values(
                        status=bindparam("b_status"),
                        status_changed_at=bindparam("b_at"),
                        detail=bindparam("b_detail"),
                    ),
                    moves,
                )
        return inserted

    async def get(self, command_id: str) -> StoredCommand | None:
        async with read_tx(self._engine, f"read command {command_id}") as conn:
            row = (
                await conn.execute(select(commands).where(commands.c.command_id == command_id))
            ).first()
        return None if row is None else stored_command(row)

    async def live(
        self,
        now: datetime,
        targets: Sequence[str] | None = None,
        *,
        id_prefix: str | None = None,
    ) -> list[StoredCommand]:
        """Commands not yet expired and not final: what a restarted controller re-applies;
        only those for ``targets`` or whose id starts with ``id_prefix`` when given."""
        stmt = select(commands).where(
            commands.c.expires_at > now, commands.c.status.not_in(sorted(FINAL_STATUSES))
        )
        if targets is not None:
            stmt = stmt.where(commands.c.target.in_(list(targets)))
        if id_prefix is not None:
            stmt = stmt.where(commands.c.command_id.startswith(id_prefix, autoescape=True))
        async with read_tx(self._engine, "read live commands") as conn:
            rows = (await conn.execute(stmt.order_by(commands.c.issued_at))).all()
        return [stored_command(row) for row in rows]

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

    async def between(
        self,
        start: datetime,
        end: datetime,
        *,
        target: str | None = None,
        status: str | None = None,
        limit: int = 500,
    ) -> list[StoredCommand]:
        """Commands issued in ``[start, end)``, newest first."""
        stmt = select(commands).where(commands.c.issued_at >= start, commands.c.issued_at < end)
        if target is not None:
            stmt = stmt.where(commands.c.target == target)
        if status is not None:
            stmt = stmt.where(commands.c.status == status)
        stmt = stmt.order_by(commands.c.issued_at.desc(), commands.c.id.desc()).limit(limit)
        async with read_tx(self._engine, "read commands") as conn:
            rows = (await conn.execute(stmt)).all()
        return [stored_command(r) for r in rows]
