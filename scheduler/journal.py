"""The command journal: what the writer applied, in the store's command table.

Every batch the :class:`~scheduler.writer.CommandWriter` writes is journaled (idempotent by
command id), device setpoints and lighting levels alike, so that after a restart
:func:`scheduler.recovery.reapply_live` can apply the commands in force once more under their
ids (fault F3). :func:`to_row` / :func:`from_row` are the one mapping between a
:class:`~kernel.commands.Command` and a stored row; the web API's overrides use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from scheduler.writer import CommandJournal
from store import Store
from store.commands import Command as StoredCommandRow
from store.commands import CommandOutcome

log = logging.getLogger(__name__)

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
        entries = outcomes(results, now)
        if entries:
            await self._store.commands.record_many(entries, now=now)


class BackgroundJournal:
    """A journal off the cycle's path: :meth:`record` queues the batch and returns at once;
    one task records the batches in order. Leaving the context records what is still queued,
    so a service that stops leaves nothing it applied unrecorded.

    Why: a quarter-hour's new setpoints (a hundred, say) are a transaction's work; in the
    cycle that delays every write behind it. Batches that queue up while one is recorded are
    recorded together, in order, in the next transaction. A process killed before its batch
    is recorded loses only the journal entry, not the command: the decider re-issues it
    under the same id after the restart, and the new process applies it then.
    """

    def __init__(self, journal: CommandJournal) -> None:
        self._journal = journal
        self._queue: asyncio.Queue[Sequence[CommandResult]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BackgroundJournal:
        self._task = asyncio.create_task(self._run(), name="command journal")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.flush()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def record(self, results: Sequence[CommandResult]) -> None:
        if self._task is None:
            raise RuntimeError("BackgroundJournal used outside 'async with'")
        self._queue.put_nowait(list(results))

    async def flush(self) -> None:
        """Wait until every queued batch is recorded."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            batch = list(await self._queue.get())
            taken = 1
            while not self._queue.empty():  # what queued meanwhile goes into the same record
                batch.extend(self._queue.get_nowait())
                taken += 1
            try:
                await self._journal.record(batch)
            except Exception:
                log.exception("journal of %d command result(s) failed", len(batch))
            finally:
                for _ in range(taken):
                    self._queue.task_done()
