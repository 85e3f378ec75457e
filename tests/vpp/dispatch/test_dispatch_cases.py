"""Hand-checkable dispatch cases with known optima."""

from __future__ import annotations

import pytest
from helpers_dispatch import flat_prices, problem, series

from vpp.dispatch import (
    Battery,
    Engine,
    EvCharger,
    Member,
    PlanStatus,
    Prices,
    Pv,
    SolveOptions,
    StorageHeater,
    Weights,
    solve,
)

ENGINES = [
    SolveOptions(),
    SolveOptions(aggregate=False),
    SolveOptions(engine=Engine.PULP),
]
ENGINE_IDS = ["matrix-aggregated", "matrix-monolithic", "pulp-reference"]
NO_WEAR = Weights(battery_wear_eur_per_kwh=0.0)


@pytest.mark.parametrize(
    ("pv_w", "load_a_w", "load_b_w", "shared_wh"),
    [
        (5000, 1000, 3000, 750.0),  # surplus 4 kW > demand 3 kW → shared = demand
        (5000, 1000, 6000, 1000.0),  # surplus 4 kW < demand 6 kW → shared = surplus
        (1000, 1000, 3000, 0.0),  # no surplus
        (5000, 1000, 0, 0.0),  # no demand
    ],
)
@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_shared_is_min_of_surplus_and_demand(
    pv_w: float, load_a_w: float, load_b_w: float, shared_wh: float, options: SolveOptions
) -> None:
    a = Member("a", series(load_a_w), (Pv("pv", series(pv_w), 5000.0),))
    b = Member("b", series(load_b_w))
    plan = solve(problem([a, b], 1), options)
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.shared_wh[0] == pytest.approx(shared_wh, abs=1e-3)
    assert plan.member("b").import_wh[0] == pytest.approx(load_b_w / 4, abs=1e-3)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_battery_shifts_pv_into_the_evening_peak(options: SolveOptions) -> None:
    # qh0: PV 4 kW, no load, feed-in 0.05; qh1: load 4 kW, import 0.40. Lossless battery.
    bat = Battery("bat", 10_000, 0.0, 5000, 5000, charge_efficiency=1.0, discharge_efficiency=1.0)
    m = Member("home", series(0, 4000), (Pv("pv", series(4000, 0), 4000.0), bat))
    prices = Prices(series(0.40, 0.40), series(0.05, 0.05), series(0.2, 0.2), series(0.05, 0.05))
    plan = solve(problem([m], 2, prices, NO_WEAR), options)
    sched = plan.asset("home", "bat")
    assert sched.power_w == pytest.approx((4000.0, -4000.0), abs=1e-3)
    assert sched.soc_wh == pytest.approx((1000.0, 0.0), abs=1e-3)
    assert plan.member("home").import_wh == pytest.approx((0.0, 0.0), abs=1e-3)
    assert plan.objective_eur == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_battery_efficiency_costs_energy(options: SolveOptions) -> None:
    # charge 4 kW for a quarter-hour at 90 %: 0.9 kWh stored, 0.81 kWh delivered at 90 %.
    bat = Battery("bat", 10_000, 0.0, 4000, 10_000, charge_efficiency=0.9, discharge_efficiency=0.9)
    m = Member("home", series(0, 8000), (Pv("pv", series(4000, 0), 4000.0), bat))
    prices = Prices(series(0.40, 0.40), series(0.0, 0.0), series(0.2, 0.2), series(0.05, 0.05))
    plan = solve(problem([m], 2, prices, NO_WEAR), options)
    sched = plan.asset("home", "bat")
    assert sched.power_w[0] == pytest.approx(4000.0, abs=1e-3)
    assert sched.power_w[1] == pytest.approx(-900 * 0.9 * 4, abs=1e-2)
    assert plan.member("home").import_wh[1] == pytest.approx(2000 - 810, abs=1e-2)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_feeder_limit_forces_curtailment(options: SolveOptions) -> None:
    m = Member("plant", series(0, 0), (Pv("pv", series(10_000, 3000), 10_000.0),))
    plan = solve(problem([m], 2, feeder_export_limit_w=6000.0), options)
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.asset("plant", "pv").power_w == pytest.approx((6000.0, 3000.0), abs=1e-3)
    assert plan.asset("plant", "pv").limit_w == pytest.approx((6000.0, 10_000.0), abs=1e-3)
    assert plan.member("plant").export_wh == pytest.approx((1500.0, 750.0), abs=1e-3)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_ev_is_full_by_seven_in_the_cheapest_quarter_hours(options: SolveOptions) -> None:
    n = 32  # 00:00–08:00 UTC; departure at 07:00 = quarter-hour 28
    import_ = [0.35] * n
    for t in (8, 9, 10, 11):
        import_[t] = 0.10
    import_[30] = 0.01  # cheaper still, but after departure
    prices = Prices(tuple(import_), (0.05,) * n, (0.2,) * n, (0.05,) * n)
    ev = EvCharger("wallbox", 11_000, 11_000, departure_qh=28, smart_charging=True)
    plan = solve(problem([Member("m", (500.0,) * n, (ev,))], n, prices), options)
    power = plan.asset("m", "wallbox").power_w
    assert sum(power) * 0.25 == pytest.approx(11_000, abs=1e-2)
    assert [t for t, p in enumerate(power) if p > 1] == [8, 9, 10, 11]
    assert not plan.violations


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_negative_feed_in_makes_curtailment_pay(options: SolveOptions) -> None:
    m = Member("m", series(1000), (Pv("pv", series(5000), 5000.0),))
    prices = Prices(series(0.30), series(-0.05), series(0.2), series(0.05))
    plan = solve(problem([m], 1, prices), options)
    assert plan.asset("m", "pv").power_w[0] == pytest.approx(1000.0, abs=1e-3)
    assert plan.member("m").export_wh[0] == pytest.approx(0.0, abs=1e-3)
    assert plan.objective_eur == pytest.approx(4 * 0.25 * 0.001, abs=1e-6)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_positive_feed_in_never_curtails(options: SolveOptions) -> None:
    m = Member("m", series(1000), (Pv("pv", series(5000), 5000.0),))
    plan = solve(problem([m], 1), options)
    assert plan.asset("m", "pv").power_w[0] == pytest.approx(5000.0, abs=1e-3)
    assert plan.asset("m", "pv").limit_w == (5000.0,)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_p14a_floor_holds_even_when_waiting_would_be_cheaper(options: SolveOptions) -> None:
    n = 8
    import_ = (0.40,) * 4 + (0.05,) * 4
    prices = Prices(import_, (0.05,) * n, (0.2,) * n, (0.05,) * n)
    ev = EvCharger("wb", 11_000, 4200 * 0.25 * 2, departure_qh=n)  # need = 2 qh at 4.2 kW
    plan = solve(problem([Member("m", (0.0,) * n, (ev,))], n, prices), options)
    power = plan.asset("m", "wb").power_w
    assert power[:2] == pytest.approx((4200.0, 4200.0), abs=1e-3)
    assert sum(power[2:]) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_unmet_energy_is_reported_not_infeasible(options: SolveOptions) -> None:
    heater = StorageHeater("nsh", 6000, 20_000, window_start_qh=0, window_end_qh=4)
    plan = solve(problem([Member("m", (0.0,) * 4, (heater,))], 4), options)
    assert plan.status is PlanStatus.FEASIBLE_WITH_VIOLATIONS
    (v,) = plan.violations
    assert (v.constraint, v.member_id, v.asset_id) == ("energy_need", "m", "nsh")
    assert v.amount_wh == pytest.approx(20_000 - 6000, abs=1e-2)


@pytest.mark.parametrize("options", ENGINES, ids=ENGINE_IDS)
def test_feeder_overload_is_reported_with_its_slack(options: SolveOptions) -> None:
    plan = solve(
        problem([Member("m", series(10_000, 2000))], 2, feeder_import_limit_w=5000.0), options
    )
    assert plan.status is PlanStatus.FEASIBLE_WITH_VIOLATIONS
    (v,) = plan.violations
    assert (v.constraint, v.qh) == ("feeder_import", 0)
    assert v.amount_wh == pytest.approx(5000 * 0.25, abs=1e-3)


def test_lighting_is_a_member_with_a_known_load() -> None:
    lights = Member("street-lighting", series(800, 800, 0, 0))
    pv = Member("school", series(0, 0, 0, 0), (Pv("roof", series(0, 1000, 1000, 0), 1000.0),))
    plan = solve(problem([lights, pv], 4))
    # the meter sees 200 Wh import in both; in the second, the school's surplus covers it
    assert plan.member("street-lighting").import_wh == pytest.approx((200, 200, 0, 0), abs=1e-3)
    assert plan.shared_wh == pytest.approx((0, 200, 0, 0), abs=1e-3)


def test_flat_prices_helper_is_used_consistently() -> None:
    assert flat_prices(3).import_eur_per_kwh == (0.30, 0.30, 0.30)
