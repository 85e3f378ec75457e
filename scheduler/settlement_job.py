"""The settlement job: a community's local day settled from the stored intervals, versioned.

The job gathers the inputs from the store, asks the settlement core which version they add
(:func:`vpp.settlement.runs.next_version`: the versioning rules, the statements and what a
restatement changed live there) and stores it. Two kinds of run, both stored as versions of the
period ``[local midnight, next local midnight)`` of the day (92, 96 or 100 quarter-hours), so
that the newest version of a day is what a member sees:

* **provisional** (after each quarter-hour): the day so far, through the last quarter-hour that
  has ended *and* that metering has closed for at least one member of the community (readings
  come a little after the quarter-hour; settling a quarter-hour before any reading closes it
  would only estimate everybody);
* **final** (once a day, for the previous day): the whole day. Running it again with unchanged
  inputs adds nothing; when late meter data changed the inputs, a restatement is appended.

**Missing values.** Every active member needs a value for every quarter-hour. Where metering has
none (meter silent, readings not yet there), the quarter-hour gets an L3 estimate by
:func:`vpp.metering.intervals.fill_missing` (the same quarter-hour a week earlier, up to four
weeks back, else 0 Wh). Substitute values are counted per member in the statement details
(``substitute_quarter_hours``); a member without any metered value in the period is listed in
the run's ``missing_members``.

**Reading the intervals.** Without a cache every run reads the day from the store. Given the
metering job's :class:`~scheduler.metering_job.IntervalCache` (``cache=metering.cache``; only
when that metering job runs in this process and is the only writer of intervals, as in the
service), a run reads the store once per member and day and afterwards what metering recorded
since, so a quarter-hour's run does not read the whole day back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kernel.errors import ConfigError, InputError
from kernel.quarterhours import QH, floor_qh, local_day_bounds, local_day_of
from kernel.readings import utc
from scheduler.metering_job import (
    EXPORT_CHANNEL,
    IMPORT_CHANNEL,
    METER_CHANNELS,
    IntervalCache,
    metered_by_channel,
)
from scheduler.site import Site
from store import Store
from store.settlement import SettlementRun
from vpp.metering.intervals import FILL_WEEKS_BACK, MeteredInterval, fill_missing
from vpp.metering.member import member_intervals
from vpp.settlement.model import MemberInterval, Membership, SettlementInputs
from vpp.settlement.runs import DayInputs, RunKind, next_version

log = logging.getLogger(__name__)

_WEEK = timedelta(days=7)
#: How many days back the job remembers the newest run of a day (older ones are read again).
_REMEMBER = timedelta(days=3)


class SettlementJob:
    """Provisional and final settlement runs of a site's communities; see the module doc."""

    def __init__(self, store: Store, site: Site, *, cache: IntervalCache | None = None) -> None:
        self._store = store
        self._site = site
        self._cache = cache
        # newest run appended or seen per (community, day start): spares reading every version
        self._newest: dict[tuple[str, datetime], SettlementRun] = {}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self._site.site.timezone)

    def reconfigure(self, site: Site) -> None:
        """Settle with a changed site from the next call on."""
        self._site = site

    def last_closed_day(self, now: datetime) -> date:
        """The local day of the quarter-hour that ended last (at 00:00:05 the day before)."""
        return local_day_of(floor_qh(utc(now)) - QH, self.tz)

    async def provisional(
        self, community_id: str, day: date, now: datetime
    ) -> SettlementRun | None:
        """Settle ``day`` so far and append a provisional version (see the module doc).

        Returns the newest run of the day: the new version, the unchanged previous one, or a
        final run already there. None when no quarter-hour of the day is metered yet.
        """
        day_inputs = await self.day_inputs(community_id, day, now, kind=RunKind.PROVISIONAL)
        if day_inputs is None:
            return None
        return await self._append(day_inputs, RunKind.PROVISIONAL, now)

    async def final(self, community_id: str, day: date, now: datetime) -> SettlementRun:
        """Settle the whole local ``day`` (it must have ended by ``now``) as a final version.

        Unchanged inputs return the existing final run; changed ones append a restatement.
        """
        _, end = local_day_bounds(day, self.tz)
        if utc(now) < end:
            raise InputError(
                "day",
                f"the day ends at {end.isoformat()}, now is {utc(now).isoformat()}",
                f"final settlement of {community_id!r} for {day.isoformat()}: the day ends at "
                f"{end.isoformat()}, now is {utc(now).isoformat()}",
            )
        day_inputs = await self.day_inputs(community_id, day, now, kind=RunKind.FINAL)
        assert day_inputs is not None  # a final run always covers the whole day
        return await self._append(day_inputs, RunKind.FINAL, now)

    # -- inputs --------------------------------------------------------------------------

    async def day_inputs(
        self, community_id: str, day: date, now: datetime, *, kind: RunKind
    ) -> DayInputs | None:
        """The settlement inputs of ``day`` from the stored intervals, gaps estimated (L3)."""
        if community_id not in {c.id for c in self._site.communities}:
            known = ", ".join(sorted(c.id for c in self._site.communities)) or "none"
            raise ConfigError(
                "community_id", f"unknown community {community_id!r} (the site has: {known})"
            )
        community = self._site.settlement_community(community_id)
        start, end = local_day_bounds(day, self.tz)
        cap = min(end, floor_qh(utc(now)))
        if cap <= start:
            return None
        metered: dict[str, dict[str, dict[datetime, MeteredInterval]]] = {}
        for m in community.members:
            metered[m.member_id] = await self._metered(m.member_id, start, cap)
        through = end if kind is RunKind.FINAL else min(cap, _metered_end(metered.values(), start))
        if through <= start:
            return None
        intervals: list[MemberInterval] = []
        missing: list[str] = []
        for m in community.members:
            channels = {
                ch: {qh: iv for qh, iv in ivs.items() if qh < through and m.active_at(qh)}
                for ch, ivs in metered[m.member_id].items()
            }
            active = _active(m, start, through)
            if active and not any(channels.values()):
                missing.append(m.member_id)
            filled = await self._filled(m.member_id, channels, active, start, through)
            intervals += member_intervals(
                m.member_id, filled[IMPORT_CHANNEL], filled[EXPORT_CHANNEL]
            )
        inputs = SettlementInputs(community, start, through, tuple(intervals))
        return DayInputs(inputs, day, end, tuple(sorted(missing)))

    async def _metered(
        self, member_id: str, start: datetime, end: datetime
    ) -> dict[str, dict[datetime, MeteredInterval]]:
        """A member's stored intervals by channel (from the cache once it holds the day)."""
        cache = self._cache
        if cache is not None and cache.covers(member_id, start):
            return {ch: cache.get(member_id, ch, start, end) for ch in METER_CHANNELS}
        by_channel = metered_by_channel(
            await self._store.intervals.for_member(member_id, start, end)
        )
        if cache is not None:
            cache.load(member_id, start, by_channel)
        return by_channel

    async def _filled(
        self,
        member_id: str,
        channels: dict[str, dict[datetime, MeteredInterval]],
        active: list[datetime],
        start: datetime,
        through: datetime,
    ) -> dict[str, list[MeteredInterval]]:
        """Both channels on every active quarter-hour; the missing ones estimated (L3)."""
        gaps = [qh for qh in active if any(qh not in channels[ch] for ch in channels)]
        history: dict[str, dict[datetime, MeteredInterval]] = {ch: {} for ch in channels}
        if gaps:
            lo, hi = gaps[0], gaps[-1] + QH
            for k in range(1, FILL_WEEKS_BACK + 1):
                stored = await self._store.intervals.for_member(
                    member_id, lo - k * _WEEK, hi - k * _WEEK
                )
                for ch, ivs in metered_by_channel(stored).items():
                    history[ch].update(ivs)
        wanted = set(active)
        out: dict[str, list[MeteredInterval]] = {}
        for ch, ivs in channels.items():
            if all(qh in ivs for qh in active):
                out[ch] = [ivs[qh] for qh in active]
                continue
            known = [*history[ch].values(), *ivs.values()]
            complete = fill_missing(f"{member_id}/{ch}", known, start, through)
            out[ch] = [iv for iv in complete if iv.qh_start in wanted]
        return out

    # -- runs ----------------------------------------------------------------------------

    async def _append(self, day: DayInputs, kind: RunKind, now: datetime) -> SettlementRun:
        """Store the version the core's rules add over the newest one (or return that one)."""
        community_id = day.inputs.community.community_id
        day_start = day.inputs.period_start
        newest = await self._newest_run(community_id, day_start, day.day_end)
        version = next_version(day, kind, newest, self.tz)
        if version is None:
            assert newest is not None  # without a stored version there is always a new one
            return newest
        run = await self._store.settlement.append(
            community_id,
            day_start,
            day.day_end,
            version.statements,
            reason=version.reason,
            now=utc(now),
            details=version.details,
        )
        self._remember(run)
        log.info(
            "settlement %s %s v%d (%s, %d quarter-hours, missing: %s)",
            community_id,
            day.day.isoformat(),
            run.version,
            version.reason,
            version.details["quarter_hours"],
            ", ".join(day.missing_members) or "none",
        )
        return run

    async def _newest_run(
        self, community_id: str, start: datetime, end: datetime
    ) -> SettlementRun | None:
        cached = self._newest.get((community_id, start))
        if cached is not None:
            return cached
        run = await self._store.settlement.latest(community_id, start, end)
        if run is not None:
            self._remember(run)
        return run

    def _remember(self, run: SettlementRun) -> None:
        """Keep the newest run of the last few days (a final run carries every line)."""
        self._newest[(run.community_id, run.period_start)] = run
        horizon = run.period_start - _REMEMBER
        for key in [k for k in self._newest if k[1] < horizon]:
            del self._newest[key]


def _metered_end(
    members: Iterable[dict[str, dict[datetime, MeteredInterval]]], start: datetime
) -> datetime:
    """End of the last quarter-hour with both counters metered, over all members."""
    end = start
    for channels in members:
        both = channels[IMPORT_CHANNEL].keys() & channels[EXPORT_CHANNEL].keys()
        if both:
            end = max(end, max(both) + QH)
    return end


def _active(m: Membership, start: datetime, through: datetime) -> list[datetime]:
    out = []
    t = start
    while t < through:
        if m.active_at(t):
            out.append(t)
        t += QH
    return out
