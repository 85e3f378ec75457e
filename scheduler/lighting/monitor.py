"""Failures of the street lighting, found in each cycle's snapshot.

Every new node report is checked by the pure core (:func:`lighting.failures.check_report`:
lamp failure, on by day, power too high or too low, failures the node reports itself) and
clears a *communication lost*; a node saying ``offline`` and a node silent beyond
``thresholds.comm_timeout_s`` (:func:`lighting.failures.check_communication`) raise one. The
:class:`~scheduler.lighting.alarms.AlarmBook` raises each alarm once and clears it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from lighting.failures import (
    Alarm,
    FailureKind,
    FailureThresholds,
    check_communication,
    check_report,
)
from lighting.program import ResolvedNight
from lighting.site import LightingIndex
from lighting.sun import NightAnchors, night_anchors, night_of, zone
from scheduler.lighting.alarms import REPORT_KINDS, AlarmBook
from scheduler.snapshot import LightingInputs

_COMM = [FailureKind.COMMUNICATION_LOST]


class LightingMonitor:
    """Turns the reports and the silence in each snapshot into alarms."""

    def __init__(self, alarms: AlarmBook, thresholds: FailureThresholds, since: datetime) -> None:
        self.alarms = alarms
        self.thresholds = thresholds
        self._since = since
        self._checked: dict[str, datetime] = {}
        self._online: dict[str, bool] = {}
        self._anchor_cache: dict[tuple[str, date], NightAnchors] = {}

    def reindex(self) -> None:
        self._anchor_cache = {}

    async def check(
        self,
        index: LightingIndex,
        inputs: LightingInputs,
        nights: Mapping[str, ResolvedNight],
        now: datetime,
    ) -> None:
        """Raise and clear the alarms that the snapshot's inputs call for."""
        for lid, report in inputs.reports.items():
            lum = index.luminaires.get(lid)
            if lum is None or self._checked.get(lid) == report.ts:
                continue
            self._checked[lid] = report.ts
            anchors = self._anchors(index, lum.segment_id, report.ts, nights)
            found = check_report(lum, report, anchors, self.thresholds)
            await self.alarms.update(lid, found, REPORT_KINDS, now)
            await self.alarms.update(lid, (), _COMM, now)
        for lid, online in inputs.online.items():
            was = self._online.get(lid)
            self._online[lid] = online
            if not online and was is not False and lid in index.luminaires:
                alarm = Alarm(lid, FailureKind.COMMUNICATION_LOST, now, "node went offline")
                await self.alarms.update(lid, [alarm], _COMM, now)
        last = {lid: r.ts for lid, r in inputs.reports.items()}
        silent = check_communication(index.luminaires, last, now, self._since, self.thresholds)
        for alarm in silent:
            await self.alarms.update(alarm.luminaire_id, [alarm], _COMM, now)

    def _anchors(
        self,
        index: LightingIndex,
        segment_id: str,
        ts: datetime,
        nights: Mapping[str, ResolvedNight],
    ) -> NightAnchors:
        night = nights.get(segment_id)
        if night is not None and night.start <= ts < night.end:
            return night.anchors
        segment = index.segments[segment_id]
        key = (segment_id, night_of(ts, zone(segment.timezone)))
        anchors = self._anchor_cache.get(key)
        if anchors is None:
            if len(self._anchor_cache) > 8 * max(1, len(index.segments)):
                self._anchor_cache.clear()
            anchors = night_anchors(segment.place, key[1])
            self._anchor_cache[key] = anchors
        return anchors


__all__ = ["LightingMonitor"]
