"""Failure alarms of the lighting service: raised once, cleared once, handed to a hook.

The pure core (:mod:`lighting.failures`) says what is wrong in one report or one silence;
this book remembers what is already known, so an operator (and the store behind the hook)
sees a failure when it appears and when it goes, not once per report.

An alarm's identity is its luminaire and kind; a failure the node reports itself
(``node_reported``) is identified by its text as well, so that ``lamp_failure`` and
``driver_overtemperature`` of one node are two alarms.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from lighting.failures import Alarm, FailureKind
from store import Store

log = logging.getLogger(__name__)

AlarmKey = tuple[str, str, str]

#: The kinds one state report decides about (present → raised, absent → cleared).
REPORT_KINDS = frozenset(
    {
        FailureKind.LAMP_FAILURE,
        FailureKind.ON_BY_DAY,
        FailureKind.POWER_TOO_HIGH,
        FailureKind.POWER_TOO_LOW,
        FailureKind.NODE_REPORTED,
    }
)


class Change(enum.StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """An alarm that was raised or cleared at ``at`` (UTC, the service clock)."""

    change: Change
    alarm: Alarm
    at: datetime


AlarmHook = Callable[[AlarmChange], Awaitable[None]]


def stored_alarms(store: Store) -> AlarmHook:
    """A hook that keeps the store's alarm stream: one alarm per luminaire, kind and (for a
    failure the node reports itself) its name — the key never holds a changing text such as
    a measured power, so a failure stays one alarm while its figures change."""

    async def hook(change: AlarmChange) -> None:
        a = change.alarm
        key = "lighting:" + ":".join(part for part in alarm_key(a) if part)
        if change.change is Change.RAISED:
            await store.alarms.raise_alarm(
                key,
                source=a.luminaire_id,
                kind=a.kind.value,
                severity="warning",
                message=a.detail or a.kind.value,
                now=change.at,
            )
        else:
            await store.alarms.clear_alarm(key, message="cleared", now=change.at)

    return hook


def alarm_key(alarm: Alarm) -> AlarmKey:
    detail = alarm.detail if alarm.kind is FailureKind.NODE_REPORTED else ""
    return (alarm.luminaire_id, alarm.kind.value, detail)


class AlarmBook:
    """The active alarms and the changes since start (raise once, clear once)."""

    def __init__(self, hook: AlarmHook | None = None) -> None:
        self._hook = hook
        self._active: dict[AlarmKey, Alarm] = {}
        self.history: list[AlarmChange] = []

    @property
    def active(self) -> dict[AlarmKey, Alarm]:
        """A copy of the alarms in force, by (luminaire, kind, reported failure)."""
        return dict(self._active)

    def for_luminaire(self, luminaire_id: str) -> list[Alarm]:
        return [a for k, a in self._active.items() if k[0] == luminaire_id]

    async def update(
        self,
        luminaire_id: str,
        found: Iterable[Alarm],
        kinds: Iterable[FailureKind],
        at: datetime,
    ) -> list[AlarmChange]:
        """Apply one check of ``kinds`` for ``luminaire_id``: alarms in ``found`` are raised
        unless already active; active alarms of those kinds that were not found are cleared."""
        checked = {k.value for k in kinds}
        found_by_key = {alarm_key(a): a for a in found}
        changes: list[AlarmChange] = []
        for key, alarm in found_by_key.items():
            if key not in self._active:
                self._active[key] = alarm
                changes.append(AlarmChange(Change.RAISED, alarm, at))
        for key, alarm in list(self._active.items()):
            if key[0] == luminaire_id and key[1] in checked and key not in found_by_key:
                del self._active[key]
                changes.append(AlarmChange(Change.CLEARED, alarm, at))
        for change in changes:
            self.history.append(change)
            log.info(
                "alarm %s: luminaire %s %s (%s)",
                change.change.value,
                change.alarm.luminaire_id,
                change.alarm.kind.value,
                change.alarm.detail,
            )
            if self._hook is not None:
                await self._hook(change)
        return changes
