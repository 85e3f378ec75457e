"""The command journal: what the writer applied, in the store's command table.

Every batch the :class:`~scheduler.writer.CommandWriter` writes is journaled (idempotent by
command id), device setpoints and lighting levels alike, so that after a restart
:func:`scheduler.recovery.reapply_live` can apply the commands in force once more under their
ids (fault F3). :func:`to_row` / :func:`from_row` are the one mapping between a
:class:`~kernel.commands.Command` and a stored row; the web API's overrides use it too.
:class:`StoreJournal` records a batch in one transaction; the service records through
:class:`~scheduler.journal_background.BackgroundJournal`, which keeps the batches the
database cannot take yet in a bounded, persisted buffer (:mod:`scheduler.journal_buffer`)
and never drops one below its bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from store import Store
from store.commands import Command as StoredCommandRow
from store.commands import CommandOutcome

#: What the writer's result means for the stored command. Duplicates and commands that had
#: expired before they were written were never applied: nothing to journal.
_STATUS = {
    CommandStatus.APPLIED: "sent",
    CommandStatus.FAILED: "failed",
    CommandStatus.UNSUPPORTED: "failed",
}


def to_row(cmd: Command, issued_at: datetime) -> StoredCommandRow:
    value: dict[str, Any] = {
        "kind": cmd.kind.value,
        "value": cmd.value,
        "revert_s": cmd.revert_s,
        "ramp_s": cmd.ramp_s,
        "source": cmd.source,
        "reason": cmd.reason,
        "decided_at": None if cmd.decided_at is None else cmd.decided_at.isoformat(),
    }
    issued = min(issued_at, cmd.expires_at - timedelta(microseconds=1))
    return StoredCommandRow(cmd.command_id, cmd.target, value, issued, cmd.expires_at)


def from_row(row: StoredCommandRow) -> Command:
    v = row.value
    return Command(
        command_id=row.command_id,
        target=row.target,
        kind=CommandKind(v["kind"]),
        value=float(v["value"]),
        expires_at=row.expires_at,
        source=str(v.get("source", "")),
        revert_s=int(v.get("revert_s", 0)),
        ramp_s=float(v.get("ramp_s", 0.0)),
        reason=str(v.get("reason", "")),
        decided_at=_instant(v.get("decided_at")),
    )


def _instant(text: object) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if isinstance(text, str) else None


def outcomes(results: Sequence[CommandResult], now: datetime) -> list[CommandOutcome]:
    """The journal entries of a batch's results (duplicates and expired ones have none)."""
    return [
        CommandOutcome(to_row(res.command, now), status, res.detail or None)
        for res in results
        if (status := _STATUS.get(res.status)) is not None
    ]


class StoreJournal:
    """Records what the writer did in the store's command table: a batch in one transaction
    (:meth:`store.commands.CommandRepository.record_many`), idempotent on command id."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    async def record(self, results: Sequence[CommandResult]) -> None:
        now = self._now()
        await self.record_outcomes(outcomes(results, now), now)

    async def record_outcomes(self, entries: Sequence[CommandOutcome], now: datetime) -> None:
        """Record ``entries`` with ``now`` as their status time, in one transaction."""
        if entries:
            await self._store.commands.record_many(entries, now=now)
