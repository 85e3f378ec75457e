"""Restart recovery (F3): the commands in force survive the controller.

After a restart, :func:`reapply_live` reads from the journal the commands that have neither
expired nor reached a final status and applies, for every target and kind, only the NEWEST
of them once more under its *same* id through the new writer, the targets one by one in the
order they were issued: devices with a revert time get their limit back before it lapses,
luminaires their level, and because the ids are unchanged a decider re-issuing the same
command afterwards is a duplicate, not a second write. An older command that a newer one for
the same target and kind replaced is not applied again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from kernel.commands import Command, CommandKind, CommandResult
from scheduler.journal import from_row
from scheduler.writer import CommandWriter
from store import Store

log = logging.getLogger(__name__)


async def reapply_live(store: Store, writer: CommandWriter, now: datetime) -> list[CommandResult]:
    """Re-apply, once and under the same ids, the newest command in force at ``now`` of every
    target and kind."""
    await store.commands.expire(now)
    newest: dict[tuple[str, CommandKind], Command] = {}
    for row in await store.commands.live(now):  # ordered by issue time
        cmd = from_row(row.command)
        newest[(cmd.target, cmd.kind)] = cmd
    if newest:
        log.info("re-applying %d command(s) in force after restart", len(newest))
    return await writer.write(list(newest.values()))


__all__ = ["reapply_live"]
