"""What each page shows, computed from the functions the API routes use.

Members: :func:`api.routers.members.member_buckets` (balances) and
:func:`store.balances.BalanceReads.statements_through` (the member's statements of the day's
settlement versions, whose successive provisional states give the figures per
quarter-hour). Operators: the store's plans, alarms and commands as the API reads them,
and the live cycle of the runtime when one is attached (``Service.last_report``,
``Service.site``, ``Service.devices``). Lighting engineers:
:func:`store.lighting_config.effective_lighting` (the configuration that applies, as the
lighting routes pick it), the running lighting service's decisions, and the core's previews.
Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from api.periods import PeriodQuery
from api.routers.members import member_buckets
from kernel.quarterhours import QH
from lighting.config import LightingConfig
from lighting.preview import NightPreview, YearPreview, preview_night, preview_year
from lighting.program import Program
from lighting.site import LightingIndex
from lighting.sun import night_of
from store import Store
from store.alarms import AlarmEvent
from store.commands import StoredCommand
from store.lighting_config import effective_lighting
from store.plans import StoredPlan
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


# -- members --------------------------------------------------------------------------------


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


async def member_view(store: Store, member_id: str, now: datetime, tz: ZoneInfo) -> MemberView:
    today = local_today(now, tz)
    month_start = today.replace(day=1)
    qh_period = PeriodQuery(Resolution.QUARTER_HOUR, today, today + timedelta(days=1), tz)
    day_period = PeriodQuery(Resolution.DAY, month_start, _next_month(month_start), tz)
    month_period = PeriodQuery(Resolution.MONTH, month_start, _next_month(month_start), tz)
    qh_buckets = await member_buckets(store, member_id, qh_period)
    day_buckets = await member_buckets(store, member_id, day_period)
    month_buckets = await member_buckets(store, member_id, month_period)
    times, series = await quarter_hour_figures(store, member_id, today, tz)
    source = "settled"
    if all(v is None for v in series["consumption"]):
        # nothing settled yet today: show what the meter measured at the grid point
        source = "metered"
        series = {
            "grid_import": [
                float(b.metered_wh["import_energy_kwh"]) / 1000
                if "import_energy_kwh" in b.metered_wh
                else None
                for b in qh_buckets
            ],
            "grid_export": [
                float(b.metered_wh["export_energy_kwh"]) / 1000
                if "export_energy_kwh" in b.metered_wh
                else None
                for b in qh_buckets
            ],
        }
        times = [int(b.start.timestamp()) for b in qh_buckets]
    rows = [
        MemberRow(
            day=b.start.astimezone(tz).date(),
            metered={k: kwh(v) for k, v in sorted(b.metered_wh.items())},
            settled=_settled_map(b) if b.settled else None,
            amount_eur=str(eur(b.amount_eur)) if b.settled else None,
            co2_g=plain(b.co2_g) if b.settled else None,
            substitutes=b.substitute_quarter_hours,
        )
        for b in day_buckets
        if b.start.astimezone(tz).date() <= today
    ]
    today_bucket = next((b for b in day_buckets if b.start.astimezone(tz).date() == today), None)
    month = month_buckets[0] if month_buckets else None
    return MemberView(
        member_id=member_id,
        today=today,
        month_start=month_start,
        qh_times=times,
        qh_series=series,
        qh_source=source,
        today_totals=_settled_map(today_bucket)
        if today_bucket is not None and today_bucket.settled
        else None,
        today_amount_eur=str(eur(today_bucket.amount_eur))
        if today_bucket is not None and today_bucket.settled
        else None,
        month_totals=_settled_map(month) if month is not None and month.settled else None,
        month_amount_eur=str(eur(month.amount_eur))
        if month is not None and month.settled
        else None,
        rows=list(reversed(rows)),
    )


# -- operators ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanChart:
    plan: StoredPlan
    status: str | None
    objective_eur: float | None
    violations: list[dict[str, Any]]
    times: list[int]
    grid_kw: list[float]
    shared_kw: list[float]
    batteries: dict[str, list[float]] = field(default_factory=dict)
    evs: dict[str, list[float]] = field(default_factory=dict)


def plan_chart(plan: StoredPlan) -> PlanChart:
    """The stored plan's series for the chart: the community's planned grid exchange and
    sharing (kW), each battery's state of charge (kWh) and each EV's charging power (kW)."""
    p = plan.payload
    n = int(p.get("n_qh") or 0)
    start = datetime.fromisoformat(p["start"]) if "start" in p else plan.interval_start
    times = [int((start + i * QH).timestamp()) for i in range(n)]
    grid = [0.0] * n
    for m in p.get("members", []):
        for i, (imp, exp) in enumerate(zip(m["import_wh"], m["export_wh"], strict=False)):
            if i < n:
                grid[i] += (float(imp) - float(exp)) * 4 / 1000
    shared = [float(v) * 4 / 1000 for v in p.get("shared_wh", [])][:n]
    batteries: dict[str, list[float]] = {}
    evs: dict[str, list[float]] = {}
    for a in p.get("assets", []):
        if a.get("kind") == "battery" and a.get("soc_wh") is not None:
            batteries[a["asset_id"]] = [round(float(v) / 1000, 3) for v in a["soc_wh"]][:n]
        elif a.get("kind") == "ev":
            evs[a["asset_id"]] = [round(float(v) / 1000, 3) for v in a["power_w"]][:n]
    return PlanChart(
        plan=plan,
        status=p.get("status"),
        objective_eur=p.get("objective_eur"),
        violations=[v for v in p.get("violations", []) if isinstance(v, dict)],
        times=times,
        grid_kw=[round(v, 3) for v in grid],
        shared_kw=[round(v, 3) for v in shared],
        batteries=batteries,
        evs=evs,
    )


async def current_plans(store: Store, runtime: Any, now: datetime) -> list[PlanChart]:
    """The plan in force now (as ``GET /api/v1/plans/current``) of each community."""
    site = getattr(runtime, "site", None)
    ids = [c.id for c in site.communities] if site is not None else await store.plans.communities()
    out = []
    for cid in ids:
        plan = await store.plans.latest(cid, now)
        if plan is not None:
            out.append(plan_chart(plan))
    return out


async def active_alarms(store: Store) -> list[AlarmEvent]:
    return await store.alarms.active()


async def recent_overrides(store: Store, now: datetime) -> list[StoredCommand]:
    rows = await store.commands.between(
        now - timedelta(hours=24), now + timedelta(minutes=1), limit=200
    )
    return [c for c in rows if c.command.command_id.startswith("override-")][:20]


def override_targets(runtime: Any) -> list[str]:
    """Asset setpoints an operator may override: the site's batteries, PV, EVs and heaters."""
    site = getattr(runtime, "site", None)
    if site is None:
        return []
    out: list[str] = []
    for m in site.members:
        out += [p.device for p in m.pv]
        for asset in (m.battery, m.ev, m.storage_heater):
            if asset is not None:
                out.append(asset.device)
    return sorted(set(out))


# -- lighting -------------------------------------------------------------------------------


def site_lighting(runtime: Any) -> LightingConfig | None:
    config = getattr(getattr(runtime, "site", None), "lighting", None)
    return config if isinstance(config, LightingConfig) else None


async def lighting_config(store: Store, runtime: Any) -> tuple[LightingConfig, str] | None:
    """The lighting configuration that applies and where it came from (as the lighting
    routes choose it)."""
    chosen = await effective_lighting(store.lighting_config, site_lighting(runtime), announce=False)
    if chosen is None:
        return None
    return chosen.config, chosen.source


@dataclass(frozen=True)
class LuminaireRow:
    luminaire_id: str
    pole: int
    rated_power_w: float
    level_pct: float | None
    reported_pct: float | None
    power_w: float | None
    reason: str


@dataclass(frozen=True)
class StreetView:
    street_id: str
    segment_ids: list[str]
    rows: list[LuminaireRow]
    reporting: int


def street_view(index: LightingIndex, street_id: str, runtime: Any) -> StreetView:
    control = getattr(runtime, "lighting", None)
    decisions: Mapping[str, Any] = getattr(control, "decisions", {}) if control else {}
    states: Mapping[str, Any] = getattr(control, "node_states", {}) if control else {}
    street = index.streets[street_id]
    rows = []
    segs: list[str] = []
    for lid in street.luminaire_ids:
        lum = index.luminaires[lid]
        if lum.segment_id not in segs:
            segs.append(lum.segment_id)
        d = decisions.get(lid)
        s = states.get(lid)
        rows.append(
            LuminaireRow(
                luminaire_id=lid,
                pole=lum.pole_index,
                rated_power_w=lum.rated_power_w,
                level_pct=None if d is None else float(d.level_pct),
                reported_pct=None if s is None else float(s.level_pct),
                power_w=None if s is None else float(s.power_w),
                reason="" if d is None else str(d.reason_text),
            )
        )
    return StreetView(street_id, segs, rows, sum(1 for r in rows if r.reported_pct is not None))


def night_preview(
    config: LightingConfig, segment_id: str, night: date, program: Program | None = None
) -> NightPreview:
    site = config.site
    segment = site.index.segments[segment_id]
    return preview_night(
        segment,
        site.index.by_segment.get(segment_id, ()),
        site.programs,
        night,
        program,
        site.co2_g_per_kwh,
    )


def year_preview(config: LightingConfig, segment_id: str, year: int) -> YearPreview:
    site = config.site
    segment = site.index.segments[segment_id]
    return preview_year(
        segment,
        site.index.by_segment.get(segment_id, ()),
        site.programs,
        year,
        co2_g_per_kwh=site.co2_g_per_kwh,
    )


def tonight(now: datetime, tz: ZoneInfo) -> date:
    """The night whose window (local noon to noon) holds ``now``."""
    return night_of(now, tz)


def curve_points(curve: Sequence[tuple[datetime, float]]) -> list[list[float]]:
    return [[t.timestamp(), round(level, 2)] for t, level in curve]


__all__ = [
    "LuminaireRow",
    "MemberRow",
    "MemberView",
    "PlanChart",
    "StreetView",
    "active_alarms",
    "current_plans",
    "curve_points",
    "lighting_config",
    "member_view",
    "night_preview",
    "override_targets",
    "plan_chart",
    "quarter_hour_figures",
    "recent_overrides",
    "street_view",
    "tonight",
    "year_preview",
]
