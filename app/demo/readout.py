"""The demo's console readout: plain values collected from the running service, and a pure
function that renders them.

What it says is what is true: a plan made for an earlier quarter-hour is shown with its age
and marked stale, a settlement that fell behind says how far, a street says how many of its
lamps report the commanded level (not the commanded level as if it were theirs), and a clock
that had to slow down says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.service import Service
from kernel.commands import CommandKind
from kernel.quarterhours import QH, floor_qh, local_day_bounds
from lighting.following import Commanded, Following, count_following
from scheduler.community import CommunityNow, community_now


@dataclass(frozen=True, slots=True)
class PlanNow:
    status: str
    objective_eur: float
    curtailments: int
    setpoints: int
    #: the quarter-hour the plan was made for (None: not known)
    start: datetime | None = None


@dataclass(frozen=True, slots=True)
class SettlementNow:
    """The newest settlement version of the local day so far (kWh, EUR)."""

    version: int
    kind: str
    consumption_kwh: Decimal
    shared_kwh: Decimal
    grid_import_kwh: Decimal
    amount_eur: Decimal
    #: the end of the last quarter-hour it settled (None: not known)
    through: datetime | None = None


@dataclass(frozen=True, slots=True)
class StreetNow:
    street: str
    lights: int
    reporting: int
    level_pct: float | None
    power_w: float | None
    why: str = ""
    #: lamps whose report shows the commanded level / shows another one
    following: int = 0
    differing: int = 0


@dataclass(frozen=True)
class DemoStatus:
    town: str
    timezone: str
    now: datetime
    speed: float
    communities: tuple[CommunityNow, ...] = ()
    plans: Mapping[str, PlanNow] = field(default_factory=dict)
    settlement: Mapping[str, SettlementNow] = field(default_factory=dict)
    streets: tuple[StreetNow, ...] = ()
    devices_unavailable: int = 0
    devices: int = 0
    #: the speed asked for, and why the clock runs slower (None: it does not)
    target_speed: float | None = None
    slowed: str | None = None


def _kw(value_w: float | None, width: int = 8) -> str:
    return "—".rjust(width) if value_w is None else f"{value_w / 1000:{width}.1f}"


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _clock_line(status: DemoStatus, local: datetime) -> str:
    speed = f"{status.speed:.3g}× real time"
    if status.slowed:
        target = f" of {status.target_speed:g}×" if status.target_speed else ""
        speed = f"slowed to {status.speed:.3g}×{target} — {status.slowed}"
    return (
        f"== {status.town} — {local:%Y-%m-%d %H:%M} {status.timezone} "
        f"(simulated, {speed}); devices answering "
        f"{status.devices - status.devices_unavailable}/{status.devices}"
    )


def _plan_line(plan: PlanNow | None, now: datetime, tz: ZoneInfo) -> str:
    if plan is None:
        return "  plan: none yet"
    text = (
        f"  plan: {plan.status}, {plan.objective_eur:.2f} € over the horizon; "
        f"{plan.setpoints} setpoints in force, {plan.curtailments} PV curtailed"
    )
    if plan.start is not None and plan.start < floor_qh(now) - QH:
        text += (
            f" — STALE: made for {plan.start.astimezone(tz):%H:%M}, {_age(now - plan.start)} old"
        )
    return text


def _settlement_line(st: SettlementNow | None, now: datetime, tz: ZoneInfo) -> str:
    if st is None:
        return "  settlement today: nothing metered yet"
    owed = st.amount_eur
    money = f"members owe {owed:.2f} €" if owed >= 0 else f"members receive {-owed:.2f} €"
    text = (
        f"  settlement today ({st.kind} v{st.version}): consumption "
        f"{st.consumption_kwh:.1f} kWh, shared {st.shared_kwh:.1f} kWh, from grid "
        f"{st.grid_import_kwh:.1f} kWh, {money}"
    )
    if st.through is not None and st.through < floor_qh(now) - QH:
        text += f" — BEHIND by {_age(floor_qh(now) - st.through)}"
    return text


def _street_line(s: StreetNow) -> str:
    level = "—" if s.level_pct is None else f"{s.level_pct:.0f} %"
    power = "—" if s.power_w is None else f"{s.power_w:.0f} W"
    line = f"street {s.street:<14} lights {s.reporting:>3}/{s.lights:<3} level {level:>6}"
    line = f"{line}  {power:>7}"
    if s.differing:
        line += f"  NOT FOLLOWING: {s.differing} of {s.lights} lamps off their command"
    return line + (f"  ({s.why})" if s.why else "")


def render(status: DemoStatus) -> str:
    """The live readout as text (pure; tested)."""
    tz = ZoneInfo(status.timezone)
    local = status.now.astimezone(tz)
    lines = [_clock_line(status, local)]
    if not status.communities:
        lines.append("community: no cycle yet")
    for c in status.communities:
        lines.append(
            f"community {c.name} ({c.members} members"
            + (f", {c.unread} unread" if c.unread else "")
            + f"): generation {_kw(c.generation_w, 0)} kW, consumption "
            f"{_kw(c.consumption_w, 0)} kW, shared {_kw(c.shared_w, 0)} kW, "
            f"grid {_kw(c.grid_w, 0)} kW (+ import)"
        )
        lines.append(_plan_line(status.plans.get(c.community_id), status.now, tz))
        lines.append(_settlement_line(status.settlement.get(c.community_id), status.now, tz))
    lines.extend(_street_line(s) for s in status.streets)
    return "\n".join(lines)


# -- collecting it from the service -------------------------------------------------------------


def streets_now(service: Service) -> tuple[StreetNow, ...]:
    """Each street: lamps reporting, their mean reported level and power, how many follow
    their command, and the reason chain of its first lamp."""
    lighting = service.lighting
    if lighting is None:
        return ()
    by_street: dict[str, list[str]] = {}
    for lum in lighting.index.luminaires.values():
        by_street.setdefault(lum.street_id, []).append(lum.luminaire_id)
    states = lighting.node_states
    decisions = lighting.decisions
    commanded = {
        c.target: Commanded(c.value, c.decided_at or c.expires_at, c.ramp_s)
        for c in service.live().in_force
        if c.kind is CommandKind.DIM_LEVEL_PCT
    }
    out: list[StreetNow] = []
    for street, ids in sorted(by_street.items()):
        seen = [states[i] for i in ids if i in states]
        first = decisions.get(sorted(ids)[0])
        counts = count_following(ids, commanded, states)
        out.append(
            StreetNow(
                street,
                len(ids),
                len(seen),
                sum(s.level_pct for s in seen) / len(seen) if seen else None,
                sum(s.power_w for s in seen) if seen else None,
                first.reason_text if first is not None else "",
                counts[Following.FOLLOWS],
                counts[Following.DIFFERS],
            )
        )
    return tuple(out)


async def collect(
    service: Service, town: str, target_speed: float | None = None, slowed: str | None = None
) -> DemoStatus:
    """What the readout shows, read from the running service."""
    site = service.site
    now = service.clock.now()
    report = service.last_report
    tz = ZoneInfo(site.site.timezone)
    communities: list[CommunityNow] = []
    plans: dict[str, PlanNow] = {}
    settlement: dict[str, SettlementNow] = {}
    in_force = service.live().in_force
    start, end = local_day_bounds(now.astimezone(tz).date(), tz)
    for c in site.communities:
        if report is not None:
            communities.append(community_now(site, c.id, report.snapshot))
        plan = service.jobs.plans.get(c.id)
        if plan is not None:
            mine = [cmd for cmd in in_force if cmd.source.endswith(f":{c.id}")]
            curtailed = sum(
                1 for cmd in mine if cmd.kind is CommandKind.POWER_LIMIT_PCT and cmd.value < 100
            )
            plans[c.id] = PlanNow(
                plan.status.value, plan.objective_eur, curtailed, len(mine), plan.start
            )
        run = await service.store.settlement.latest(c.id, start, end)
        if run is not None:
            st = run.statements
            through = run.details.get("through")
            settlement[c.id] = SettlementNow(
                run.version,
                run.reason,
                sum((s.consumption_wh for s in st), Decimal(0)) / 1000,
                sum((s.shared_received_wh for s in st), Decimal(0)) / 1000,
                sum((s.grid_import_wh for s in st), Decimal(0)) / 1000,
                sum((s.amount_eur for s in st), Decimal(0)),
                datetime.fromisoformat(through) if isinstance(through, str) else None,
            )
    unavailable = len(report.snapshot.unavailable) if report is not None else 0
    return DemoStatus(
        town=town,
        timezone=site.site.timezone,
        now=now,
        speed=service.clock.speed,
        communities=tuple(communities),
        plans=plans,
        settlement=settlement,
        streets=streets_now(service),
        devices_unavailable=unavailable,
        devices=len(site.devices),
        target_speed=target_speed,
        slowed=slowed,
    )


__all__ = [
    "CommunityNow",
    "DemoStatus",
    "PlanNow",
    "SettlementNow",
    "StreetNow",
    "collect",
    "community_now",
    "render",
    "streets_now",
]
