"""The settlement job: a community's local day settled from the stored intervals, versioned.

Two kinds of run, both stored as versions of the period ``[local midnight, next local
midnight)`` of the day (92, 96 or 100 quarter-hours), so that the newest version of a day is
what a member sees:

* **provisional** (after each quarter-hour): the day so far, through the last quarter-hour that
  has ended *and* that metering has closed for at least one member of the community (readings
  come a little after the quarter-hour; settling a quarter-hour before any reading closes it
  would only estimate everybody);
* **final** (once a day, for the previous day): the whole day. Running it again with unchanged
  inputs adds nothing; when late meter data changed the inputs, a new version (a restatement)
  is appended, its details naming the version it restates and what changed per member.

A provisional run is never appended over a final one, and a run whose inputs (fingerprint of
every interval, key, tariff and membership) equal those of the newest run of the same kind adds
no version.

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

**The figures.** A statement is the member's sum over the quarter-hours (whole Wh; money summed
exactly and rounded once to the cent, :func:`vpp.settlement.statement.round_eur`; CO₂ to the
milligram). A final run's statements also carry the quarter-hour lines (``lines``), so a member
can see each quarter-hour and the sums can be checked against them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from kernel.errors import ConfigError
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
from store.settlement import SettlementRun, Statement
from vpp.metering.intervals import FILL_WEEKS_BACK, MeteredInterval, fill_missing
from vpp.metering.member import member_intervals
from vpp.metering.quality import IntervalQuality, worst
from vpp.settlement.model import MemberInterval, Membership, SettlementInputs
from vpp.settlement.runs import fingerprint
from vpp.settlement.settle import settle_lines
from vpp.settlement.statement import ENERGY_FIELDS, MONEY_FIELDS, StatementLine, round_eur

log = logging.getLogger(__name__)

Kind = Literal["provisional", "final"]
PROVISIONAL: Kind = "provisional"
FINAL: Kind = "final"

_WEEK = timedelta(days=7)
#: How many days back the job remembers the newest run of a day (older ones are read again).
_REMEMBER = timedelta(days=3)
_MG = Decimal("0.001")
#: Quarter-hour series a final statement carries in ``details["lines"]``.
LINE_FIELDS = ("consumption_wh", "generation_wh", "received_wh", "delivered_wh")


@dataclass(frozen=True, slots=True)
class DayInputs:
    """What one run of one day is computed from, with what metering could not deliver."""

    inputs: SettlementInputs
    day: date
    day_start: datetime
    day_end: datetime
    missing_members: tuple[str, ...]


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
        day_inputs = await self.day_inputs(community_id, day, now, kind=PROVISIONAL)
        if day_inputs is None:
            return None
        return await self._append(day_inputs, PROVISIONAL, now)

    async def final(self, community_id: str, day: date, now: datetime) -> SettlementRun:
        """Settle the whole local ``day`` (it must have ended by ``now``) as a final version.

        Unchanged inputs return the existing final run; changed ones append a restatement.
        """
        _, end = local_day_bounds(day, self.tz)
        if utc(now) < end:
            raise ValueError(
                f"final settlement of {community_id!r} for {day.isoformat()}: the day ends at "
                f"{end.isoformat()}, now is {utc(now).isoformat()}"
            )
        day_inputs = await self.day_inputs(community_id, day, now, kind=FINAL)
        assert day_inputs is not None  # a final run always covers the whole day
        return await self._append(day_inputs, FINAL, now)

    # -- inputs --------------------------------------------------------------------------

    async def day_inputs(
        self, community_id: str, day: date, now: datetime, *, kind: Kind
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
        through = end if kind == FINAL else min(cap, _metered_end(metered.values(), start))
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
        return DayInputs(inputs, day, start, end, tuple(sorted(missing)))

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

    async def _append(self, day_inputs: DayInputs, kind: Kind, now: datetime) -> SettlementRun:
        inputs = day_inputs.inputs
        community_id = inputs.community.community_id
        fp = fingerprint(inputs)
        newest = await self._newest_run(community_id, day_inputs.day_start, day_inputs.day_end)
        if newest is not None:
            newest_kind = newest.details.get("kind")
            if kind == PROVISIONAL and newest_kind == FINAL:
                return newest
            if newest_kind == kind and newest.details.get("inputs_fingerprint") == fp:
                return newest
        lines = settle_lines(inputs)
        statements = _statements(inputs, lines, with_lines=kind == FINAL)
        details = _run_details(day_inputs, lines, kind, fp)
        reason: str = kind
        if kind == FINAL and newest is not None and newest.details.get("kind") == FINAL:
            reason = "restatement"
            details["restates_version"] = newest.version
            details["changes"] = _changes(newest.statements, statements)
        elif kind == PROVISIONAL:
            local = inputs.period_end.astimezone(self.tz)
            reason = f"provisional through {local:%H:%M}"
        run = await self._store.settlement.append(
            community_id,
            day_inputs.day_start,
            day_inputs.day_end,
            statements,
            reason=reason,
            now=utc(now),
            details=details,
        )
        self._remember(run)
        log.info(
            "settlement %s %s v%d (%s, %d quarter-hours, missing: %s)",
            community_id,
            day_inputs.day.isoformat(),
            run.version,
            reason,
            details["quarter_hours"],
            ", ".join(day_inputs.missing_members) or "none",
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


def _statements(
    inputs: SettlementInputs, lines: tuple[StatementLine, ...], *, with_lines: bool
) -> list[Statement]:
    by_member: dict[str, list[StatementLine]] = defaultdict(list)
    for line in lines:
        by_member[line.member_id].append(line)
    out = []
    for m in inputs.community.members:
        group = by_member.get(m.member_id, [])
        energy = {f: sum(getattr(ln, f) for ln in group) for f in ENERGY_FIELDS}
        money = {f: sum((getattr(ln, f) for ln in group), Decimal(0)) for f in MONEY_FIELDS}
        net = sum((ln.net_eur for ln in group), Decimal(0))
        co2 = sum((ln.co2_avoided_g for ln in group), Decimal(0))
        details: dict[str, Any] = {
            "quality": worst(*(ln.quality for ln in group)).value,
            "quarter_hours": len(group),
            "substitute_quarter_hours": _substitutes(group),
            "own_generation_used_wh": energy["own_generation_used_wh"],
            "participation_pct": m.participation_pct,
            "money_eur": {f: str(round_eur(v)) for f, v in money.items()},
            "net_exact_eur": str(net),
        }
        if with_lines:
            details["lines"] = {
                "qh_start": [ln.qh_start.isoformat() for ln in group],
                "quality": [ln.quality.value for ln in group],
                **{f: [getattr(ln, f) for ln in group] for f in LINE_FIELDS},
            }
        out.append(
            Statement(
                member_id=m.member_id,
                consumption_wh=Decimal(energy["consumption_wh"]),
                generation_wh=Decimal(energy["generation_wh"]),
                shared_received_wh=Decimal(energy["received_wh"]),
                shared_delivered_wh=Decimal(energy["delivered_wh"]),
                grid_import_wh=Decimal(energy["residual_wh"]),
                grid_export_wh=Decimal(energy["surplus_wh"]),
                amount_eur=round_eur(net),
                co2_g=co2.quantize(_MG, rounding=ROUND_HALF_EVEN),
                details=details,
            )
        )
    return out


def _substitutes(lines: Iterable[StatementLine]) -> dict[str, int]:
    counts = {IntervalQuality.L2.value: 0, IntervalQuality.L3.value: 0}
    for ln in lines:
        if ln.quality.is_substitute:
            counts[ln.quality.value] += 1
    return counts


def _run_details(
    day_inputs: DayInputs, lines: tuple[StatementLine, ...], kind: Kind, fp: str
) -> dict[str, Any]:
    inputs = day_inputs.inputs
    quarter_hours = (inputs.period_end - inputs.period_start) // QH
    by_member: dict[str, list[StatementLine]] = defaultdict(list)
    for ln in lines:
        by_member[ln.member_id].append(ln)
    substitutes = {
        member_id: counts
        for member_id, group in sorted(by_member.items())
        if any((counts := _substitutes(group)).values())
    }
    return {
        "kind": kind,
        "day": day_inputs.day.isoformat(),
        "through": inputs.period_end.isoformat(),
        "quarter_hours": quarter_hours,
        "complete": inputs.period_end == day_inputs.day_end,
        "inputs_fingerprint": fp,
        "quality": worst(*(ln.quality for ln in lines)).value,
        "missing_members": list(day_inputs.missing_members),
        "substitute_quarter_hours": substitutes,
        "totals_wh": {f: sum(getattr(ln, f) for ln in lines) for f in ENERGY_FIELDS},
    }


_CHANGE_FIELDS = (
    "consumption_wh",
    "generation_wh",
    "shared_received_wh",
    "shared_delivered_wh",
    "grid_import_wh",
    "grid_export_wh",
    "amount_eur",
)


def _changes(
    old: Iterable[Statement], new: Iterable[Statement]
) -> dict[str, dict[str, dict[str, str]]]:
    """Per member, the statement figures a restatement changed: old, new, delta (as text)."""
    before = {s.member_id: s for s in old}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for s in new:
        prev = before.get(s.member_id)
        changed: dict[str, dict[str, str]] = {}
        for f in _CHANGE_FIELDS:
            a = getattr(prev, f) if prev is not None else Decimal(0)
            b = getattr(s, f)
            if a != b:
                changed[f] = {"old": str(a), "new": str(b), "delta": str(b - a)}
        if changed:
            out[s.member_id] = changed
    return out
