"""Rolling rounds with a kept model, and the decomposition's certified bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from vpp.dispatch import (
    Battery,
    DecompositionOptions,
    DispatchProblem,
    Engine,
    Member,
    ModelCache,
    PlanStatus,
    SolveOptions,
    rolling_round,
    solve,
)
from vpp.dispatch.testing import synthetic_community


def _next_round(p: DispatchProblem, plan_soc: dict[str, float]) -> DispatchProblem:
    """Shift by one quarter-hour: drop the first value, repeat the last, take measured SoC."""
    members = []
    for m in p.members:
        assets = []
        for a in m.assets:
            if isinstance(a, Battery):
                a = replace(a, soc_wh=plan_soc[a.asset_id])
            elif hasattr(a, "forecast_w"):
                a = replace(a, forecast_w=(*a.forecast_w[1:], a.forecast_w[0]))
            assets.append(a)
        members.append(Member(m.member_id, (*m.load_w[1:], m.load_w[0]), tuple(assets)))
    prices = p.prices
    shifted = type(prices)(
        *(
            (*s[1:], s[0])
            for s in (
                prices.import_eur_per_kwh,
                prices.feed_in_eur_per_kwh,
                prices.community_eur_per_kwh,
                prices.network_fee_eur_per_kwh,
            )
        )
    )
    return replace(p, start=p.start + timedelta(minutes=15), members=tuple(members), prices=shifted)


def test_rolling_rounds_reuse_the_model_and_match_a_cold_solve() -> None:
    p = synthetic_community(30, seed=5, n_qh=48)
    cache = ModelCache()
    for _ in range(3):
        plan = rolling_round(p, cache)
        assert plan.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE_WITH_VIOLATIONS)
        cold = solve(p)
        assert plan.objective_eur == pytest.approx(cold.objective_eur, rel=1e-6, abs=1e-6)
        soc = {s.asset_id: s.soc_wh[0] for s in plan.assets if s.soc_wh is not None}
        p = _next_round(p, soc)
    assert (cache.cold_rounds, cache.warm_rounds) == (1, 2)
    assert cache.last_valid_plan is not None


def test_a_changed_structure_rebuilds_the_model() -> None:
    cache = ModelCache()
    p = synthetic_community(10, seed=1, n_qh=16)
    rolling_round(p, cache)
    # a member without flexibility is a constant: same matrix, warm round
    rolling_round(replace(p, members=(*p.members, Member("lights", (500.0,) * 16))), cache)
    assert (cache.cold_rounds, cache.warm_rounds) == (1, 1)
    battery = Battery("new-bat", 5000, 2500, 2000, 2000)
    rolling_round(replace(p, members=(*p.members, Member("new", (500.0,) * 16, (battery,)))), cache)
    assert (cache.cold_rounds, cache.warm_rounds) == (2, 1)


@pytest.mark.parametrize("sample_every", [None, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_decomposition_is_certified_within_its_gap(seed: int, sample_every: int | None) -> None:
    p = synthetic_community(40, seed=seed, n_qh=24)
    exact = solve(p)
    options = SolveOptions(
        engine=Engine.DECOMPOSED,
        decomposition=DecompositionOptions(group_size=10, gap_tol=1e-3, sample_every=sample_every),
    )
    dw = solve(p, options)
    assert dw.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE_WITH_VIOLATIONS)
    assert dw.dual_bound_eur is not None
    assert dw.dual_bound_eur <= exact.objective_eur + 1e-6
    assert exact.objective_eur <= dw.objective_eur + 1e-6
    assert dw.objective_eur - dw.dual_bound_eur <= 1e-3 * max(1.0, abs(dw.objective_eur)) + 1e-9


def test_decomposition_stopped_early_returns_a_plan_with_its_certified_gap() -> None:
    p = synthetic_community(40, seed=2, n_qh=24)
    exact = solve(p)
    options = SolveOptions(
        engine=Engine.DECOMPOSED,
        decomposition=DecompositionOptions(group_size=10, gap_tol=1e-9, max_iterations=3),
    )
    plan = solve(p, options)
    assert plan.status is PlanStatus.AT_LIMIT
    assert [a.code for a in plan.alarms] == ["dispatch_at_limit"]
    assert plan.objective_eur >= exact.objective_eur - 1e-6
    if plan.dual_bound_eur is not None:
        assert plan.dual_bound_eur <= exact.objective_eur + 1e-6


def test_auto_engine_decomposes_large_communities() -> None:
    p = synthetic_community(30, seed=4, n_qh=24)
    small = solve(p, SolveOptions(decompose_from_flexible=10_000))
    large = solve(p, SolveOptions(decompose_from_flexible=5))
    assert small.status is PlanStatus.OPTIMAL
    assert large.status is PlanStatus.OPTIMAL
    assert large.dual_bound_eur is not None
    assert large.dual_bound_eur <= small.objective_eur + 1e-6 <= large.objective_eur + 2e-6
