"""Property tests over random small communities: physics and accounting always hold."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpp.dispatch import (
    Asset,
    Battery,
    DispatchProblem,
    Engine,
    EvCharger,
    Member,
    Plan,
    PlanStatus,
    Prices,
    Pv,
    SolveOptions,
    StorageHeater,
    solve,
)
from vpp.dispatch.bounds import ev_floor_kw, soc_bounds_kwh

TOL_WH = 0.05
power = st.floats(0, 8000, allow_nan=False)


@st.composite
def members(draw: st.DrawFn, i: int, n: int) -> Member:
    assets: list[Asset] = []
    if draw(st.booleans()):
        assets.append(Pv(f"pv{i}", tuple(draw(st.lists(power, min_size=n, max_size=n))), 8000.0))
    if draw(st.booleans()):
        cap = draw(st.floats(0, 12_000))
        assets.append(
            Battery(
                f"bat{i}",
                cap,
                cap * draw(st.floats(0, 1)),
                draw(st.floats(0, 6000)),
                draw(st.floats(0, 6000)),
                min_soc_wh=cap * draw(st.floats(0, 0.5)),
                charge_efficiency=draw(st.floats(0.8, 1)),
                discharge_efficiency=draw(st.floats(0.8, 1)),
                terminal_soc_wh=draw(st.one_of(st.none(), st.floats(0, cap))),
            )
        )
    kind = draw(st.sampled_from(["none", "ev", "heater"]))
    if kind == "ev":
        arrival = draw(st.integers(0, n - 1))
        assets.append(
            EvCharger(
                f"ev{i}",
                draw(st.floats(1000, 11_000)),
                draw(st.floats(0, 20_000)),
                departure_qh=draw(st.integers(arrival, n + 2)),
                arrival_qh=arrival,
                smart_charging=draw(st.booleans()),
            )
        )
    elif kind == "heater":
        start = draw(st.integers(0, n - 1))
        assets.append(
            StorageHeater(
                f"h{i}", 6000, draw(st.floats(0, 15_000)), start, draw(st.integers(start, n))
            )
        )
    load = tuple(draw(st.lists(st.floats(0, 6000), min_size=n, max_size=n)))
    return Member(f"m{i}", load, tuple(assets))


@st.composite
def communities(draw: st.DrawFn) -> DispatchProblem:
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 4))
    price = st.floats(0, 0.5)
    imp = draw(st.lists(price, min_size=n, max_size=n))
    feed = draw(st.lists(st.floats(-0.1, 0.2), min_size=n, max_size=n))
    fee = draw(st.lists(st.floats(0, 0.1), min_size=n, max_size=n))
    limit = st.one_of(st.none(), st.floats(0, 15_000))
    return DispatchProblem(
        community_id="prop",
        start=datetime(2026, 3, 1, tzinfo=UTC),
        n_qh=n,
        members=tuple(draw(members(i, n)) for i in range(k)),
        prices=Prices(tuple(imp), tuple(feed), (0.2,) * n, tuple(fee)),
        feeder_import_limit_w=draw(limit),
        feeder_export_limit_w=draw(limit),
    )


def _check_invariants(problem: DispatchProblem, plan: Plan) -> None:
    n = problem.n_qh
    assert plan.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE_WITH_VIOLATIONS)
    total_imp = np.zeros(n)
    total_exp = np.zeros(n)
    for m in problem.members:
        flows = plan.member(m.member_id)
        demand_wh = np.asarray(m.load_w) * 0.25
        for a in m.assets:
            s = plan.asset(m.member_id, a.asset_id)
            p = np.asarray(s.power_w)
            if isinstance(a, Pv):
                assert np.all(p <= np.asarray(a.forecast_w) + 1e-6)
                demand_wh -= p * 0.25
            else:
                demand_wh += p * 0.25
            if isinstance(a, Battery):
                assert s.soc_wh is not None
                soc = np.asarray(s.soc_wh)
                lo, hi = soc_bounds_kwh(a, n)
                assert np.all(soc >= lo * 1e3 - TOL_WH)
                assert np.all(soc <= hi * 1e3 + TOL_WH)
                prev = np.concatenate([[a.soc_wh], soc[:-1]])
                step = np.where(p > 0, p * a.charge_efficiency, p / a.discharge_efficiency) * 0.25
                np.testing.assert_allclose(soc - prev, step, atol=TOL_WH)
                assert np.all(p <= a.max_charge_w + 1e-6)
                assert np.all(-p <= a.max_discharge_w + 1e-6)
            if isinstance(a, EvCharger):
                assert np.all(p >= ev_floor_kw(a, n) * 1e3 - 1e-6)  # §14a floor
                assert np.all(p <= a.max_power_w + 1e-6)
            if isinstance(a, StorageHeater):
                window = np.zeros(n, dtype=bool)
                window[a.window_start_qh : a.window_end_qh] = True
                assert np.all(np.abs(p[~window]) <= 1e-6)  # draws only inside its window
                assert np.all(p <= a.max_power_w + 1e-6)
        net = np.asarray(flows.import_wh) - np.asarray(flows.export_wh)
        np.testing.assert_allclose(net, demand_wh, atol=TOL_WH)  # energy balance per qh
        assert np.all(np.minimum(flows.import_wh, flows.export_wh) <= TOL_WH)
        total_imp += flows.import_wh
        total_exp += flows.export_wh
    shared = np.asarray(plan.shared_wh)
    assert np.all(shared <= total_imp + TOL_WH)
    assert np.all(shared <= total_exp + TOL_WH)
    reported = {(v.constraint, v.qh) for v in plan.violations}
    for name, limit, amount in (
        ("feeder_import", problem.feeder_import_limit_w, total_imp - total_exp),
        ("feeder_export", problem.feeder_export_limit_w, total_exp - total_imp),
    ):
        if limit is None:
            continue
        for t in range(n):
            if amount[t] > limit * 0.25 + 1.0:
                assert (name, t) in reported


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_plans_keep_physics_and_accounting(problem: DispatchProblem) -> None:
    plan = solve(problem)
    _check_invariants(problem, plan)
    assert plan.solver_objective_eur is not None
    assert plan.objective_eur == pytest.approx(plan.solver_objective_eur, rel=1e-5, abs=1e-5)
    if plan.dual_bound_eur is not None:
        assert plan.dual_bound_eur <= plan.objective_eur + 1e-5


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_aggregation_and_reference_reach_the_same_optimum(problem: DispatchProblem) -> None:
    fast = solve(problem)
    mono = solve(problem, SolveOptions(aggregate=False))
    ref = solve(problem, SolveOptions(engine=Engine.PULP))
    _check_invariants(problem, ref)
    assert fast.objective_eur == pytest.approx(mono.objective_eur, rel=1e-5, abs=1e-5)
    assert fast.objective_eur == pytest.approx(ref.objective_eur, rel=1e-5, abs=1e-5)
