"""What the operator's page shows besides the live state (:mod:`api.live`): the plan in force
of each community as chart series, the active alarms, the recent overrides and the setpoints
an operator may override. Read from the store as the API's routes read it, and from the
runtime's site when one is attached. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from api.runtime import Runtime, site_of
from kernel.quarterhours import QH, floor_qh
from scheduler.overrides import OVERRIDE_PREFIX
from store import Store
from store.alarms import AlarmEvent
from store.commands import StoredCommand
from store.plans import StoredPlan


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
    #: minutes since the quarter-hour it was made for, when that is not the current or the
    #: previous one (the dispatch did not plan since: the page marks it stale)
    stale_min: int | None = None


def _grid_kw(payload: dict[str, Any], n: int) -> list[float]:
    """The community's planned grid exchange per quarter-hour in kW (+ = import)."""
    grid = [0.0] * n
    for m in payload.get("members", []):
        for i, (imp, exp) in enumerate(zip(m["import_wh"], m["export_wh"], strict=False)):
            if i < n:
                grid[i] += (float(imp) - float(exp)) * 4 / 1000
    return [round(v, 3) for v in grid]


def stale_minutes(plan: StoredPlan, now: datetime) -> int | None:
    """How old a plan is, in minutes, when it was made for a quarter-hour before the
    previous one; None for a current plan."""
    if plan.interval_start >= floor_qh(now) - QH:
        return None
    return int((now - plan.interval_start).total_seconds() // 60)


def plan_chart(plan: StoredPlan, now: datetime | None = None) -> PlanChart:
    """The stored plan's series for the chart: the community's planned grid exchange and
    sharing (kW), each battery's state of charge (kWh) and each EV's charging power (kW)."""
    p = plan.payload
    n = int(p.get("n_qh") or 0)
    start = datetime.fromisoformat(p["start"]) if "start" in p else plan.interval_start
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
        times=[int((start + i * QH).timestamp()) for i in range(n)],
        grid_kw=_grid_kw(p, n),
        shared_kw=[round(v, 3) for v in shared],
        batteries=batteries,
        evs=evs,
        stale_min=None if now is None else stale_minutes(plan, now),
    )


async def current_plans(store: Store, runtime: Runtime | None, now: datetime) -> list[PlanChart]:
    """The plan in force now (as ``GET /api/v1/plans/current``) of each community: the site's
    communities, or without a site every community the store has plans of."""
    site = site_of(runtime)
    ids = [c.id for c in site.communities] if site is not None else await store.plans.communities()
    out = []
    for cid in ids:
        plan = await store.plans.latest(cid, now)
        if plan is not None:
            out.append(plan_chart(plan, now))
    return out


async def active_alarms(store: Store) -> list[AlarmEvent]:
    return await store.alarms.active()


async def recent_overrides(store: Store, now: datetime) -> list[StoredCommand]:
    """The newest 20 overrides issued in the last 24 h."""
    rows = await store.commands.between(
        now - timedelta(hours=24), now + timedelta(minutes=1), limit=200
    )
    return [c for c in rows if c.command.command_id.startswith(OVERRIDE_PREFIX)][:20]


def override_targets(runtime: Runtime | None) -> list[str]:
    """Asset setpoints an operator may override: the site's batteries, PV, EVs and heaters
    (none without a site)."""
    site = site_of(runtime)
    if site is None:
        return []
    out: list[str] = []
    for m in site.members:
        out += [p.device for p in m.pv]
        for asset in (m.battery, m.ev, m.storage_heater):
            if asset is not None:
                out.append(asset.device)
    return sorted(set(out))


__all__ = [
    "PlanChart",
    "active_alarms",
    "current_plans",
    "override_targets",
    "plan_chart",
    "recent_overrides",
]
