"""Balances per quarter-hour, local day or local month, from intervals and settled statements.

Two sources, shown side by side and never mixed:

* **metered** — a member's quarter-hour intervals (newest version of each), summed per channel
  (``import_energy_wh`` → ``import_energy_kwh``), with how many quarter-hours were substitute
  values; either interval by interval (:class:`IntervalValue`) or already summed per bucket by
  the database (:class:`IntervalSums`, the same figures for a day or month view);
* **settled** — settlement statements (the newest version of each period,
  :class:`SettledPeriod`): consumption, generation, shared received and delivered, residual
  (drawn from the supplier, the statement's ``grid_import_wh``), surplus (fed to the grid
  outside the community, ``grid_export_wh``), the amount in EUR and the CO₂ avoided in g.

Buckets are local quarter-hours, days or months of the site's zone, so a day has 92, 96 or 100
quarter-hours. A statement counts in the one bucket that contains its whole period. Settlement
writes runs of different lengths (provisional quarter-hours, the final day): a longer run
replaces the shorter runs it overlaps, so nothing is counted twice; a period that fits no bucket
(a day's run in the quarter-hour view) is not shown there. Energy goes out in kWh as exact
decimals (Wh / 1000, :func:`kwh`), money in EUR rounded once to the cent by the settlement's one
rule (:func:`vpp.settlement.statement.round_eur`). Pure: the store reads, this sums.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

from kernel.quarterhours import QH, local_day_bounds
from kernel.readings import Quality, utc
from vpp.settlement.runs import Statement

_ENERGY = (
    "consumption_wh",
    "generation_wh",
    "shared_received_wh",
    "shared_delivered_wh",
    "grid_import_wh",
    "grid_export_wh",
)


class Resolution(StrEnum):
    QUARTER_HOUR = "quarter_hour"
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class IntervalValue:
    """The newest version of one member's channel in one quarter-hour (Wh, exact)."""

    channel: str
    interval_start: datetime
    energy_wh: Decimal
    quality: Quality


@dataclass(frozen=True, slots=True)
class IntervalSums:
    """The newest versions of a member's intervals in one bucket, summed by the database:
    Wh per channel, how many quarter-hours have any interval, and how many of those have a
    substitute value in some channel."""

    bucket: int
    energy_wh: dict[str, Decimal]
    quarter_hours: int
    substitute_quarter_hours: int


@dataclass(frozen=True, slots=True)
class SettledPeriod:
    """A settled period (a run's ``[start, end)``) and one statement of it."""

    start: datetime
    end: datetime
    statement: Statement


@dataclass
class Bucket:
    """One row of a balance view ``[start, end)`` (UTC): metered Wh per channel (as
    ``<channel>_kwh`` names), the settled figures summed over the chosen statements (Wh; EUR
    and g as the statements give them), and which members' statements it holds."""

    start: datetime
    end: datetime
    quarter_hours: int = 0
    substitute_quarter_hours: int = 0
    metered_wh: dict[str, Decimal] = field(default_factory=dict)
    settled_wh: dict[str, Decimal] = field(default_factory=dict)
    amount_eur: Decimal = Decimal(0)
    co2_g: Decimal = Decimal(0)
    statements: int = 0
    members: set[str] = field(default_factory=set)

    @property
    def settled(self) -> bool:
        return self.statements > 0


def plain(value: Decimal | int) -> str:
    """A decimal as plain text without trailing zeros or exponent: ``1240.000`` → ``1240``."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def kwh(energy_wh: Decimal | int) -> str:
    """Wh → kWh as exact decimal text (no rounding: the Wh decimals carry over)."""
    return plain(Decimal(energy_wh).scaleb(-3))


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which the local ``day`` begins in ``tz``."""
    return local_day_bounds(day, tz)[0]


def bucket_bounds(
    resolution: Resolution, first: date, end: date, tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """UTC bounds of the buckets covering the local days ``[first, end)``."""
    start_utc, end_utc = local_midnight(first, tz), local_midnight(end, tz)
    if resolution is Resolution.QUARTER_HOUR:
        n = int((end_utc - start_utc) / QH)
        return [(start_utc + i * QH, start_utc + (i + 1) * QH) for i in range(n)]
    days: list[date] = []
    d = first
    while d < end:
        if resolution is Resolution.DAY or d == first or d.day == 1:
            days.append(d)
        d += timedelta(days=1)
    edges = [local_midnight(d, tz) for d in days] + [end_utc]
    return list(pairwise(edges))


def choose_periods(
    periods: Iterable[SettledPeriod], bounds: Sequence[tuple[datetime, datetime]]
) -> list[tuple[int, SettledPeriod]]:
    """Statements that fit inside one bucket, longest first, without overlaps: (bucket, period)."""
    starts = [b[0] for b in bounds]
    fitting: list[tuple[int, SettledPeriod]] = []
    for p in periods:
        i = bisect_right(starts, utc(p.start)) - 1
        if i >= 0 and utc(p.end) <= bounds[i][1]:
            fitting.append((i, p))
    fitting.sort(key=lambda ip: (-(ip[1].end - ip[1].start), ip[1].start))
    taken: dict[str, list[tuple[datetime, datetime]]] = {}
    chosen: list[tuple[int, SettledPeriod]] = []
    for i, p in fitting:
        spans = taken.setdefault(p.statement.member_id, [])
        if any(p.start < e and s < p.end for s, e in spans):
            continue
        spans.append((p.start, p.end))
        chosen.append((i, p))
    return chosen


def bucketise(
    resolution: Resolution,
    first: date,
    end: date,
    tz: ZoneInfo,
    intervals: Iterable[IntervalValue] = (),
    periods: Iterable[SettledPeriod] = (),
    sums: Iterable[IntervalSums] = (),
) -> list[Bucket]:
    """Sum intervals and the chosen statements into buckets over the local days [first, end).

    The metered side comes either from ``intervals`` one by one or from ``sums`` the database
    made per bucket of :func:`bucket_bounds` (the same figures; a day or month view then reads
    a few dozen rows instead of thousands)."""
    bounds = bucket_bounds(resolution, first, end, tz)
    buckets = [Bucket(s, e) for s, e in bounds]
    if not buckets:
        return buckets
    for summed in sums:
        b = buckets[summed.bucket]
        for channel, wh in summed.energy_wh.items():
            name = channel.removesuffix("_wh") + "_kwh"
            b.metered_wh[name] = b.metered_wh.get(name, Decimal(0)) + wh
        b.quarter_hours += summed.quarter_hours
        b.substitute_quarter_hours += summed.substitute_quarter_hours
    starts = [b.start for b in buckets]
    seen: dict[int, set[datetime]] = {}
    substitutes: dict[int, set[datetime]] = {}
    for iv in intervals:
        ts = utc(iv.interval_start)
        i = bisect_right(starts, ts) - 1
        if i < 0 or ts >= buckets[i].end:
            continue
        b = buckets[i]
        name = iv.channel.removesuffix("_wh") + "_kwh"
        b.metered_wh[name] = b.metered_wh.get(name, Decimal(0)) + iv.energy_wh
        qhs = seen.setdefault(i, set())
        if ts not in qhs:
            qhs.add(ts)
            b.quarter_hours += 1
        if iv.quality is not Quality.GOOD:
            subs = substitutes.setdefault(i, set())
            if ts not in subs:
                subs.add(ts)
                b.substitute_quarter_hours += 1
    for i, p in choose_periods(periods, bounds):
        b = buckets[i]
        s = p.statement
        for f in _ENERGY:
            b.settled_wh[f] = b.settled_wh.get(f, Decimal(0)) + getattr(s, f)
        b.amount_eur += s.amount_eur
        b.co2_g += s.co2_g
        b.statements += 1
        b.members.add(s.member_id)
    return buckets
