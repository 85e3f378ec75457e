"""Commands for the first quarter-hour: deterministic ids, expiry, units."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from helpers_dispatch import START, problem, series

from vpp.dispatch import (
    Battery,
    HeatPump,
    Member,
    Prices,
    Pv,
    commands_for_first_interval,
    solve,
)
from vpp.dispatch.commands import sg_ready_state


def _plan():  # type: ignore[no-untyped-def]
    m = Member(
        "m",
        series(0, 4000),
        (
            Pv("pv", series(8000, 0), 10_000.0),
            Battery("bat", 10_000, 0, 5000, 5000, charge_efficiency=1, discharge_efficiency=1),
            HeatPump("hp", 4000, 2000, thermal_need_wh=3000 * 0.25, cop=3.0),
        ),
    )
    prices = Prices(series(0.4, 0.4), series(-0.01, -0.01), series(0.2, 0.2), series(0, 0))
    return solve(problem([m], 2, prices, feeder_export_limit_w=2000.0))


def test_one_command_per_asset_with_units_and_expiry() -> None:
    plan = _plan()
    cmds = {c.asset_id: c for c in commands_for_first_interval(plan)}
    assert set(cmds) == {"pv", "bat", "hp"}
    for c in cmds.values():
        assert c.valid_from == START
        assert c.expires_at == START + timedelta(minutes=15)
        assert c.plan_id == plan.plan_id
    assert cmds["bat"].target == "battery.power_w"
    assert cmds["bat"].value == pytest.approx(plan.asset("m", "bat").power_w[0], abs=0.1)
    assert cmds["pv"].target == "pv.limit_pct"
    pv = plan.asset("m", "pv")
    assert pv.limit_w is not None
    assert cmds["pv"].value == pytest.approx(100 * pv.limit_w[0] / 10_000, abs=0.01)
    assert cmds["pv"].value < 100  # negative feed-in and a 2 kW export limit: curtailed
    assert cmds["hp"].target == "heat_pump.sg_ready_state"
    assert cmds["hp"].value in (1.0, 2.0, 3.0)


def test_ids_are_deterministic_and_distinct() -> None:
    a = commands_for_first_interval(_plan())
    b = commands_for_first_interval(_plan())
    assert [c.command_id for c in a] == [c.command_id for c in b]
    assert len({c.command_id for c in a}) == len(a)
    later = commands_for_first_interval(replace(_plan(), start=START + timedelta(minutes=15)))
    assert not {c.command_id for c in a} & {c.command_id for c in later}


def test_expiry_grace_extends_the_expiry() -> None:
    (c, *_) = commands_for_first_interval(_plan(), expiry_grace=timedelta(minutes=2))
    assert c.expires_at == START + timedelta(minutes=17)


@pytest.mark.parametrize(
    ("power_w", "nominal_w", "state"),
    [(0.0, 2000.0, 1), (500.0, 2000.0, 2), (2000.0, 2000.0, 2), (3500.0, 2000.0, 3)],
)
def test_sg_ready_state(power_w: float, nominal_w: float, state: int) -> None:
    assert sg_ready_state(power_w, nominal_w) == state
