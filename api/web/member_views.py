"""What the member's page shows, computed from the functions the API routes use:
:func:`api.routers.members.member_buckets` (balances) and
:func:`store.balances.BalanceReads.statements_through` (the member's statements of the day's
settlement versions, whose successive provisional states give the figures per
quarter-hour). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from api.periods import PeriodQuery
from api.routers.members import member_buckets
from kernel.quarterhours import QH
from store import Store
from store.settlement import Statement
from vpp.settlement.balances import Bucket, Resolution, kwh, local_midnight, plain
from vpp.settlement.statement import round_eur as eur

ENERGY_FIELDS = (
    ("consumption", "consumption_wh"),
    ("own_pv", "generation_wh"),
    ("shared_received", "shared_received_wh"),
    ("shared_delivered", "shared_delivered_wh"),
    ("grid_import", "grid_import_wh"),
    ("grid_export", "grid_export_wh"),
)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


@dataclass(frozen=True)
class MemberRow:
    """One day of the monthly table (kWh as exact text, EUR)."""

    day: date
    metered: Mapping[str, str]
    settled: Mapping[str, str] | None
    amount_eur: str | None
    co2_g: str | None
    substitutes: int


@dataclass(frozen=True)
class MemberView:
    member_id: str
    today: date
    month_start: date
    #: chart: UTC seconds of each quarter-hour start and kWh per series (None: not known)
    qh_times: list[int]
    qh_series: dict[str, list[float | None]]
    qh_source: str
    today_totals: Mapping[str, str] | None
    today_amount_eur: str | None
    month_totals: Mapping[str, str] | None
    month_amount_eur: str | None
    rows: list[MemberRow]


def _settled_map(b: Bucket) -> dict[str, str]:
    return {name: kwh(b.settled_wh.get(f, Decimal(0))) for name, f in ENERGY_FIELDS}


async def quarter_hour_figures(
    store: Store, member_id: str, day: date, tz: ZoneInfo
) -> tuple[list[int], dict[str, list[float | None]]]:
    """The member's settled figures per quarter-hour of ``day`` (kWh), from the successive
    versions of the day's settlement: each provisional version settles the day through a
    later quarter-hour (``details["through"]``), so the difference between two versions is
    what the quarter-hours between their ends added (spread evenly when a version covered
    several). Quarter-hours no version has reached are None."""
    start, end = local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)
    n = int((end - start) / QH)
    times = [int((start + i * QH).timestamp()) for i in range(n)]
    series: dict[str, list[float | None]] = {name: [None] * n for name, _ in ENERGY_FIELDS}
    by_through: dict[datetime, Statement] = {}
    for through_text, mine in await store.balances.statements_through(member_id, start, end):
        if not through_text:
            continue
        through = datetime.fromisoformat(through_text).astimezone(UTC)
        if start < through <= end:
            by_through[through] = mine  # a later version of the same state wins
    done = start
    previous: Mapping[str, Decimal] = {f: Decimal(0) for _, f in ENERGY_FIELDS}
    for through in sorted(by_through):
        statement = by_through[through]
        span = int((through - done) / QH)
        if span <= 0:
            continue
        first = int((done - start) / QH)
        now_values = {f: Decimal(getattr(statement, f)) for _, f in ENERGY_FIELDS}
        for name, f in ENERGY_FIELDS:
            per_qh = float((now_values[f] - previous[f]) / 1000 / span)
            for i in range(first, min(n, first + span)):
                series[name][i] = round(per_qh, 4)
        previous, done = now_values, through
    return times, series


def _metered_series(
    qh_buckets: list[Bucket],
) -> tuple[list[int], dict[str, list[float | None]]]:
    """What the meter measured at the grid point per quarter-hour (kWh; None: no value)."""
    series: dict[str, list[float | None]] = {
        name: [
            float(b.metered_wh[channel]) / 1000 if channel in b.metered_wh else None
            for b in qh_buckets
        ]
        for name, channel in (
            ("grid_import", "import_energy_kwh"),
            ("grid_export", "export_energy_kwh"),
        )
    }
    return [int(b.start.timestamp()) for b in qh_buckets], series


def _day_row(b: Bucket, tz: ZoneInfo) -> MemberRow:
    return MemberRow(
        day=b.start.astimezone(tz).date(),
        metered={k: kwh(v) for k, v in sorted(b.metered_wh.items())},
        settled=_settled_map(b) if b.settled else None,
        amount_eur=str(eur(b.amount_eur)) if b.settled else None,
        co2_g=plain(b.co2_g) if b.settled else None,
        substitutes=b.substitute_quarter_hours,
    )


def _settled(b: Bucket | None) -> tuple[Mapping[str, str] | None, str | None]:
    """The settled kWh per figure and the amount in EUR of a bucket (None: not settled)."""
    if b is None or not b.settled:
        return None, None
    return _settled_map(b), str(eur(b.amount_eur))


async def member_view(store: Store, member_id: str, now: datetime, tz: ZoneInfo) -> MemberView:
    """Today per quarter-hour (settled, or metered while nothing of today is settled), each
    day of the month so far, today's and the month's totals."""
    today = local_today(now, tz)
    month_start = today.replace(day=1)
    month_end = _next_month(month_start)
    qh_period = PeriodQuery(Resolution.QUARTER_HOUR, today, today + timedelta(days=1), tz)
    day_buckets = await member_buckets(
        store, member_id, PeriodQuery(Resolution.DAY, month_start, month_end, tz)
    )
    month_buckets = await member_buckets(
        store, member_id, PeriodQuery(Resolution.MONTH, month_start, month_end, tz)
    )
    times, series = await quarter_hour_figures(store, member_id, today, tz)
    source = "settled"
    if all(v is None for v in series["consumption"]):
        source = "metered"
        times, series = _metered_series(await member_buckets(store, member_id, qh_period))
    rows = [_day_row(b, tz) for b in day_buckets if b.start.astimezone(tz).date() <= today]
    today_totals, today_eur = _settled(
        next((b for b in day_buckets if b.start.astimezone(tz).date() == today), None)
    )
    month_totals, month_eur = _settled(month_buckets[0] if month_buckets else None)
    return MemberView(
        member_id=member_id,
        today=today,
        month_start=month_start,
        qh_times=times,
        qh_series=series,
        qh_source=source,
        today_totals=today_totals,
        today_amount_eur=today_eur,
        month_totals=month_totals,
        month_amount_eur=month_eur,
        rows=list(reversed(rows)),
    )


__all__ = ["MemberRow", "MemberView", "member_view", "quarter_hour_figures"]
