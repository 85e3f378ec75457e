"""The fallback ladder (fault F9) and the input errors that name member, asset and field."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest
from helpers_dispatch import problem, series

from vpp.dispatch import (
    Battery,
    EvCharger,
    HighsOptions,
    InvalidAssetConfig,
    InvalidForecast,
    Member,
    PlanStatus,
    Pv,
    SolveOptions,
    StorageHeater,
    solve,
    validate_problem,
)
from vpp.dispatch.testing import synthetic_community


def _home(pv: tuple[float, ...], n: int = 4) -> Member:
    bat = Battery("bat", 10_000, 5000, 3000, 3000)
    ev = EvCharger("ev", 11_000, 4200, departure_qh=n, smart_charging=True)
    return Member("home", (1000.0,) * n, (Pv("pv", pv, 8000.0), bat, ev))


def test_nan_forecast_yields_safe_default_and_alarm() -> None:
    plan = solve(problem([_home(series(0, math.nan, 3000, 0))], 4))
    assert plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT
    codes = [a.code for a in plan.alarms]
    assert codes == ["dispatch_invalid_forecast", "dispatch_fallback"]
    assert "member 'home', asset 'pv': field 'forecast_w'" in plan.alarms[0].message
    # safe default: battery idle, no curtailment, EV at its §14a minimum from arrival
    assert plan.asset("home", "bat").power_w == (0.0,) * 4
    assert plan.asset("home", "pv").limit_w == (8000.0,) * 4
    assert plan.asset("home", "ev").power_w == pytest.approx((4200, 4200, 4200, 4200))


def test_nan_forecast_with_a_last_plan_shifts_that_plan() -> None:
    pv = series(0, 6000, 6000, 6000, 6000, 0)
    good = solve(problem([_home(pv, 6)], 6))
    assert good.status is PlanStatus.OPTIMAL
    later = replace(
        problem([_home(series(6000, 6000, math.nan, 6000, 0, 0), 6)], 6),
        start=good.start + timedelta(minutes=15),
    )
    plan = solve(later, last_plan=good)
    assert plan.status is PlanStatus.FALLBACK_LAST_PLAN
    assert plan.alarms[0].code == "dispatch_invalid_forecast"
    old = good.asset("home", "ev").power_w
    assert plan.asset("home", "ev").power_w[:5] == pytest.approx(old[1:6], abs=1e-6)


def test_infeasible_data_with_a_hard_feeder_limit_falls_back() -> None:
    p = problem([Member("m", series(10_000, 10_000))], 2, feeder_import_limit_w=5000.0)
    plan = solve(p, SolveOptions(hard_feeder_limit=True))
    assert plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT
    assert plan.alarms[0].code == "dispatch_solver_failed"
    assert "infeasible" in plan.alarms[0].message
    # the plan still reports the overload it cannot avoid
    assert [v.constraint for v in plan.violations] == ["feeder_import", "feeder_import"]


def test_solver_time_out_falls_back_to_the_last_plan() -> None:
    community = synthetic_community(60, seed=3, n_qh=96)
    good = solve(community)
    assert good.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE_WITH_VIOLATIONS)
    nxt = replace(community, start=community.start + timedelta(minutes=30))
    rushed = SolveOptions(highs=HighsOptions(time_limit_s=1e-4))
    plan = solve(nxt, rushed, last_plan=good)
    assert plan.status is PlanStatus.FALLBACK_LAST_PLAN
    assert plan.alarms[0].code == "dispatch_solver_failed"
    assert "time_limit" in plan.alarms[0].message
    without_last = solve(nxt, rushed)
    assert without_last.status is PlanStatus.FALLBACK_SAFE_DEFAULT


def test_a_fallback_plan_is_not_used_as_the_last_valid_plan() -> None:
    bad = solve(problem([_home(series(0, math.nan, 0, 0))], 4))
    plan = solve(problem([_home(series(0, math.nan, 0, 0))], 4), last_plan=bad)
    assert plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT


def test_shifted_plan_respects_the_measured_state_of_charge() -> None:
    n = 4
    prices_peak = problem([_home((0.0,) * n, n)], n)
    good = solve(prices_peak)
    empty = Member(
        "home",
        (1000.0,) * n,
        (
            Pv("pv", (0.0,) * n, 8000.0),
            Battery("bat", 10_000, 0.0, 3000, 3000),
            EvCharger("ev", 11_000, 4200, departure_qh=n, smart_charging=True),
        ),
    )
    later = replace(problem([empty], n, **{}), start=good.start + timedelta(minutes=15))
    later = replace(later, prices=replace(later.prices, import_eur_per_kwh=(math.inf,) * n))
    plan = solve(later, last_plan=good)
    assert plan.status is PlanStatus.FALLBACK_LAST_PLAN
    soc = plan.asset("home", "bat").soc_wh
    assert soc is not None
    assert min(soc) >= -1e-6


@pytest.mark.parametrize(
    ("member", "field", "asset"),
    [
        (Member("m1", (1.0,), (Battery("b1", -5, 0, 1, 1),)), "capacity_wh", "b1"),
        (
            Member("m1", (1.0,), (Battery("b1", 5, 0, 1, 1, charge_efficiency=1.2),)),
            "charge_efficiency",
            "b1",
        ),
        (Member("m1", (1.0,), (EvCharger("e1", -1, 0, 1),)), "max_power_w", "e1"),
        (Member("m1", (1.0,), (EvCharger("e1", 1, 0, 0, arrival_qh=1),)), "departure_qh", "e1"),
        (
            Member("m1", (1.0,), (StorageHeater("h1", 1, 10, 0, 1, capacity_wh=5),)),
            "capacity_wh",
            "h1",
        ),
        (Member("m1", (1.0,), (Pv("p1", (1.0,), 1.0), Pv("p1", (1.0,), 1.0))), "asset_id", "p1"),
    ],
)
def test_bad_configuration_raises_naming_member_asset_and_field(
    member: Member, field: str, asset: str
) -> None:
    with pytest.raises(InvalidAssetConfig) as info:
        solve(problem([member], 1))
    assert (info.value.member, info.value.asset, info.value.field) == ("m1", asset, field)
    assert f"member 'm1', asset '{asset}': field '{field}'" in str(info.value)


@pytest.mark.parametrize(
    ("member", "field", "asset"),
    [
        (Member("m1", (1.0, 2.0)), "load_w", None),  # horizon of a different length
        (Member("m1", (math.nan,)), "load_w", None),
        (Member("m1", (1.0,), (Pv("p1", (-3.0,), 1.0),)), "forecast_w", "p1"),
        (Member("m1", (1.0,), (Battery("b1", 5, 9, 1, 1),)), "soc_wh", "b1"),
    ],
)
def test_bad_series_are_invalid_forecasts(member: Member, field: str, asset: str | None) -> None:
    with pytest.raises(InvalidForecast) as info:
        validate_problem(problem([member], 1))
    assert (info.value.member, info.value.asset, info.value.field) == ("m1", asset, field)
    plan = solve(problem([member], 1))
    assert plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT
    assert field in plan.alarms[0].message


def test_community_fields_are_named_too() -> None:
    p = problem([Member("m", (1.0,))], 1)
    with pytest.raises(InvalidForecast, match="community: field 'import_eur_per_kwh'"):
        validate_problem(replace(p, prices=replace(p.prices, import_eur_per_kwh=(1.0, 2.0))))
    with pytest.raises(InvalidAssetConfig, match="feeder_import_limit_w"):
        validate_problem(replace(p, feeder_import_limit_w=-1.0))
