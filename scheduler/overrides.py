"""Operators' manual overrides: a setpoint with an expiry that wins over the plan.

The web API stores an override as a ``pending`` command (id ``override-…``) in the command
journal, in the same row format as the controller's own commands
(:func:`scheduler.journal.to_row`). Before each cycle :class:`Overrides` reads the live ones;
as a decider it hands them to the cycle's writer (which applies each id once and refreshes it
at half its revert time, like any setpoint), and :func:`overridable` keeps a plan's setpoint
for the same device and kind out of the batch while an override is in force. When the
override expires the plan's setpoint applies again from the next cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from kernel.commands import Command, CommandKind
from scheduler.cycle import Decider
from scheduler.journal import from_row
from scheduler.snapshot import Snapshot
from store import Store

log = logging.getLogger(__name__)

OVERRIDE_PREFIX = "override-"
#: Revert time of an override when no site is at hand (the API without a running service).
DEFAULT_REVERT_S = 900


class Overrides:
    """The overrides in force, read from the store before each cycle; a cycle decider."""

    name = "overrides"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._live: tuple[Command, ...] = ()

    async def refresh(self, now: datetime) -> None:
        rows = await self._store.commands.live(now, id_prefix=OVERRIDE_PREFIX)
        live: list[Command] = []
        for row in rows:
            try:
                live.append(from_row(row.command))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("override %s unreadable, ignored: %s", row.command.command_id, exc)
        # a newer override for the same device and kind replaces an older one
        newest: dict[tuple[str, CommandKind], Command] = {}
        for cmd in live:  # live() is ordered by issue time
            newest[(cmd.target, cmd.kind)] = cmd
        self._live = tuple(newest.values())

    def in_force(self, at: datetime) -> tuple[Command, ...]:
        return tuple(c for c in self._live if not c.expired(at))

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        return self.in_force(snapshot.at)


class _Overridable:
    def __init__(self, inner: Decider, overrides: Overrides) -> None:
        self._inner = inner
        self._overrides = overrides

    @property
    def name(self) -> str:
        return self._inner.name

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        taken = {(c.target, c.kind) for c in self._overrides.in_force(snapshot.at)}
        return [c for c in self._inner.decide(snapshot) if (c.target, c.kind) not in taken]


def overridable(decider: Decider, overrides: Overrides) -> Decider:
    """``decider`` without the commands for device and kind that an override holds."""
    return _Overridable(decider, overrides)


__all__ = ["DEFAULT_REVERT_S", "OVERRIDE_PREFIX", "Overrides", "overridable"]
