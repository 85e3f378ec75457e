"""Turn solver values (or fallback values) into a :class:`Plan`, and price the plan.

Both formulations and the fallbacks hand over a :class:`RawSolution` in LP units (kW, kWh).
The plan's grid flows are recomputed from the physics (member balance at the meter), so a plan
is consistent whatever produced it, and its cost is evaluated the same way for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vpp.dispatch.bounds import (
    FloatArray,
    deferrable_bounds,
    feed_in_effective,
    pv_forecast_kw,
)
from vpp.dispatch.community import (
    QH_H,
    Battery,
    DispatchProblem,
    EvCharger,
    Member,
    Pv,
    StorageHeater,
    Weights,
)
from vpp.dispatch.plan import (
    Alarm,
    AssetKind,
    AssetSchedule,
    MemberFlows,
    Plan,
    PlanStatus,
    Timings,
    Violation,
    plan_id_for,
)

#: Soft-constraint misses below this (kWh) are solver tolerance, not violations.
VIOLATION_TOL_KWH = 1e-3

Key = tuple[str, str]


@dataclass
class RawSolution:
    """Decisions per asset in kW (charge/discharge split for batteries) plus solver figures."""

    pv_kw: dict[Key, FloatArray] = field(default_factory=dict)
    charge_kw: dict[Key, FloatArray] = field(default_factory=dict)
    discharge_kw: dict[Key, FloatArray] = field(default_factory=dict)
    deferrable_kw: dict[Key, FloatArray] = field(default_factory=dict)
    solver_objective_eur: float | None = None
    dual_bound_eur: float | None = None


def _soc_path_kwh(b: Battery, charge: FloatArray, discharge: FloatArray) -> FloatArray:
    step = QH_H * (charge * b.charge_efficiency - discharge / b.discharge_efficiency)
    out: FloatArray = b.soc_wh / 1e3 + np.cumsum(step)
    return out


def _t(values: FloatArray, scale: float) -> tuple[float, ...]:
    return tuple(float(v) for v in np.round(values * scale, 6))


@dataclass
class _Tally:
    """What assembling adds up, in the order it is added (so the cost is summed the same way
    whatever the caller)."""

    weights: Weights
    n: int
    cost: float = 0.0
    schedules: list[AssetSchedule] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)


def _pv(t: _Tally, m: str, a: Pv, raw: RawSolution) -> FloatArray:
    """The PV system's planned output (kW); its limit is the rating where nothing is cut."""
    forecast = np.asarray(a.forecast_w, dtype=float) / 1e3
    out: FloatArray = np.clip(raw.pv_kw.get((m, a.asset_id), forecast), 0.0, forecast)
    limit = np.where(forecast - out > VIOLATION_TOL_KWH, out, a.rated_power_w / 1e3)
    t.schedules.append(
        AssetSchedule(
            m,
            a.asset_id,
            AssetKind.PV,
            _t(out, 1e3),
            rated_power_w=a.rated_power_w,
            limit_w=_t(limit, 1e3),
        )
    )
    return out


def _battery(t: _Tally, m: str, a: Battery, raw: RawSolution) -> FloatArray:
    """The battery's net power (kW, + charges), its wear and its end-state shortfall."""
    key = (m, a.asset_id)
    ch = np.clip(raw.charge_kw.get(key, np.zeros(t.n)), 0.0, None)
    dis = np.clip(raw.discharge_kw.get(key, np.zeros(t.n)), 0.0, None)
    t.cost += float(np.sum(ch + dis)) * QH_H * t.weights.battery_wear_eur_per_kwh
    soc = _soc_path_kwh(a, ch, dis)
    if a.terminal_soc_wh is not None:
        short = a.terminal_soc_wh / 1e3 - float(soc[-1])
        t.cost += max(short, 0.0) * t.weights.terminal_soc_shortfall_eur_per_kwh
        if short > VIOLATION_TOL_KWH:
            t.violations.append(Violation("terminal_soc", short * 1e3, m, a.asset_id))
    power: FloatArray = ch - dis
    t.schedules.append(
        AssetSchedule(m, a.asset_id, AssetKind.BATTERY, _t(power, 1e3), _t(soc, 1e3))
    )
    return power


def _deferrable(t: _Tally, m: str, a: EvCharger | StorageHeater, raw: RawSolution) -> FloatArray:
    """The EV's or heater's power (kW) and the energy it misses."""
    d: FloatArray = np.clip(raw.deferrable_kw.get((m, a.asset_id), np.zeros(t.n)), 0.0, None)
    short = deferrable_bounds(a, t.n).need_kwh - QH_H * float(np.sum(d))
    t.cost += max(short, 0.0) * t.weights.unmet_energy_eur_per_kwh
    if short > VIOLATION_TOL_KWH:
        t.violations.append(Violation("energy_need", short * 1e3, m, a.asset_id))
    kind = AssetKind.EV if isinstance(a, EvCharger) else AssetKind.STORAGE_HEATER
    t.schedules.append(AssetSchedule(m, a.asset_id, kind, _t(d, 1e3)))
    return d


def _member_net_kw(t: _Tally, member: Member, raw: RawSolution) -> FloatArray:
    """The member's net draw at its meter (kW per quarter-hour, + imports) under the plan."""
    m = member.member_id
    net: FloatArray = np.asarray(member.load_w, dtype=float) / 1000.0
    pv_total, _ = pv_forecast_kw(member, t.n)
    pv_out = np.zeros(t.n)
    for a in member.assets:
        if isinstance(a, Pv):
            pv_out += _pv(t, m, a, raw)
        elif isinstance(a, Battery):
            net += _battery(t, m, a, raw)
        else:
            net += _deferrable(t, m, a, raw)
    net -= pv_out
    t.cost += float(np.sum(pv_total - pv_out)) * QH_H * t.weights.curtailment_eur_per_kwh
    return net


def _feeder(t: _Tally, problem: DispatchProblem, net_imp: FloatArray) -> None:
    """Penalties and violations where the community's net flow exceeds a feeder limit."""
    limits: tuple[tuple[str, float | None, FloatArray], ...] = (
        ("feeder_import", problem.feeder_import_limit_w, net_imp),
        ("feeder_export", problem.feeder_export_limit_w, -net_imp),
    )
    for name, limit_w, amount in limits:
        if limit_w is None:
            continue
        over = np.maximum(amount - limit_w / 1e3, 0.0) * QH_H
        t.cost += float(np.sum(over)) * t.weights.feeder_violation_eur_per_kwh
        for q in np.flatnonzero(over > VIOLATION_TOL_KWH):
            t.violations.append(Violation(name, float(over[q]) * 1e3, qh=int(q)))


def assemble_plan(
    problem: DispatchProblem,
    raw: RawSolution,
    status: PlanStatus,
    alarms: tuple[Alarm, ...],
    timings: Timings,
) -> Plan:
    """Build the frozen plan; ``status`` OPTIMAL is downgraded if a soft constraint gave way."""
    n = problem.n_qh
    w = problem.weights
    p = problem.prices
    price_imp = np.asarray(p.import_eur_per_kwh, dtype=float)
    price_exp = feed_in_effective(p)
    share_value = w.sharing * (price_imp - np.asarray(p.network_fee_eur_per_kwh) - price_exp)
    total_imp = np.zeros(n)
    total_exp = np.zeros(n)
    t = _Tally(w, n)
    flows: list[MemberFlows] = []
    for member in problem.members:
        net = _member_net_kw(t, member, raw)
        imp = np.maximum(net, 0.0)
        exp = np.maximum(-net, 0.0)
        total_imp += imp
        total_exp += exp
        flows.append(MemberFlows(member.member_id, _t(imp * QH_H, 1e3), _t(exp * QH_H, 1e3)))
    shared = np.minimum(total_imp, total_exp)
    t.cost += float(np.sum((price_imp * total_imp - price_exp * total_exp) * QH_H))
    t.cost -= float(np.sum(np.maximum(share_value, 0.0) * shared * QH_H))
    _feeder(t, problem, total_imp - total_exp)
    if status is PlanStatus.OPTIMAL and t.violations:
        status = PlanStatus.FEASIBLE_WITH_VIOLATIONS
    return Plan(
        plan_id=plan_id_for(problem.community_id, problem.start),
        community_id=problem.community_id,
        start=problem.start,
        n_qh=n,
        status=status,
        objective_eur=t.cost,
        solver_objective_eur=raw.solver_objective_eur,
        dual_bound_eur=raw.dual_bound_eur,
        assets=tuple(t.schedules),
        members=tuple(flows),
        shared_wh=_t(shared * QH_H, 1e3),
        violations=tuple(t.violations),
        alarms=alarms,
        timings=timings,
    )
