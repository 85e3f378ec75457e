"""A plan's setpoints for a quarter-hour: the kernel's one Command type, deterministic ids,
expiry at the quarter-hour's end, the site's revert time, units and a reason a person reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers_dispatch import START, problem, series

from kernel.commands import Command, CommandKind
from vpp.dispatch import (
    Battery,
    EvCharger,
    Member,
    Plan,
    Prices,
    Pv,
    StorageHeater,
    setpoints,
    solve,
)
from vpp.dispatch.commands import command_id, curtailing

QH = timedelta(minutes=15)
BERLIN = ZoneInfo("Europe/Berlin")
ALL = frozenset({("m", "pv"), ("m", "bat"), ("m", "ev"), ("m", "nsh")})


def _plan() -> Plan:
    m = Member(
        "m",
        series(0, 4000),
        (
            Pv("pv", series(8000, 0), 10_000.0),
            Battery("bat", 10_000, 0, 5000, 5000, charge_efficiency=1, discharge_efficiency=1),
            # both may only draw in the second quarter-hour, so the first one curtails PV
            EvCharger("ev", 11_000, 2000, departure_qh=2, arrival_qh=1, smart_charging=True),
            StorageHeater("nsh", 6000, 1000, 1, 2),
        ),
    )
    prices = Prices(series(0.4, 0.4), series(-0.01, -0.01), series(0.2, 0.2), series(0, 0))
    return solve(problem([m], 2, prices, feeder_export_limit_w=2000.0))


def _at(plan: Plan, k: int = 0, controllable: frozenset[tuple[str, str]] = ALL) -> list[Command]:
    at = START + k * QH + timedelta(minutes=7)
    return setpoints(plan, at, controllable, source="dispatch:test", revert_s=600, tz=BERLIN)


def test_one_command_per_controllable_asset_with_kind_unit_expiry_and_revert() -> None:
    plan = _plan()
    cmds = {c.target: c for c in _at(plan)}
    assert set(cmds) == {"pv", "bat", "ev", "nsh"}
    for c in cmds.values():
        assert isinstance(c, Command)
        assert c.expires_at == START + QH
        assert (c.source, c.revert_s) == ("dispatch:test", 600)
    assert cmds["bat"].kind is CommandKind.BATTERY_POWER_W
    assert cmds["bat"].value == pytest.approx(plan.asset("m", "bat").power_w[0], abs=0.1)
    assert cmds["pv"].kind is CommandKind.POWER_LIMIT_PCT
    pv = plan.asset("m", "pv")
    assert pv.limit_w is not None
    assert cmds["pv"].value == pytest.approx(100 * pv.limit_w[0] / 10_000, abs=0.01)
    assert cmds["pv"].value < 100  # negative feed-in and a 2 kW export limit: curtailed
    assert cmds["ev"].kind is CommandKind.LOAD_POWER_W
    assert cmds["nsh"].kind is CommandKind.LOAD_POWER_W
    assert (cmds["ev"].value, cmds["nsh"].value) == (0.0, 0.0)  # not yet there
    assert cmds["ev"].reason.endswith(": off")
    # the second quarter-hour: its own values, expiring at its end
    nxt = {c.target: c for c in _at(plan, 1)}
    assert nxt["bat"].value == pytest.approx(plan.asset("m", "bat").power_w[1], abs=0.1)
    assert nxt["ev"].value == pytest.approx(plan.asset("m", "ev").power_w[1], abs=0.1)
    assert nxt["ev"].value > 0
    assert nxt["ev"].reason.endswith(f": draw {nxt['ev'].value / 1000:.1f} kW")
    assert nxt["bat"].expires_at == START + 2 * QH
    assert _at(plan, 2) == []  # after the plan
    assert _at(plan, -1) == []  # before it


def test_reasons_say_plan_local_quarter_hour_and_what() -> None:
    plan = _plan()
    cmds = {c.target: c for c in _at(plan)}
    bat = cmds["bat"]
    kw = abs(bat.value) / 1000
    verb = "charge" if bat.value > 0 else "discharge"
    # 00:00 UTC is 02:00 in Berlin (CEST)
    what = "idle" if bat.value == 0 else f"{verb} {kw:.1f} kW"
    assert bat.reason == f"plan {plan.plan_id} qh 02:00: {what}"
    assert cmds["pv"].reason.endswith(f"qh 02:00: limit to {cmds['pv'].value:g} %")


def test_only_controllable_assets_get_commands() -> None:
    plan = _plan()
    assert {c.target for c in _at(plan, controllable=frozenset({("m", "bat")}))} == {"bat"}
    assert _at(plan, controllable=frozenset()) == []


def test_ids_are_deterministic_per_plan_asset_and_quarter_hour() -> None:
    a, b = _at(_plan()), _at(_plan())
    assert [c.command_id for c in a] == [c.command_id for c in b]
    assert len({c.command_id for c in a}) == len(a)
    assert {c.command_id for c in a}.isdisjoint(c.command_id for c in _at(_plan(), 1))
    other = replace(_plan(), plan_id="test@other")
    assert {c.command_id for c in a}.isdisjoint(c.command_id for c in _at(other))
    assert a[0].command_id == command_id(_plan().plan_id, "m", a[0].target, START)


def test_curtailing_means_a_pv_limit_below_the_rating_in_that_quarter_hour() -> None:
    plan = _plan()
    pv = plan.asset("m", "pv")
    assert pv.limit_w is not None
    assert curtailing(plan, "pv", START + timedelta(minutes=3))
    assert not curtailing(plan, "bat", START)
    assert not curtailing(plan, "pv", START + 5 * QH)  # outside the plan
    assert not curtailing(None, "pv", START)
    unlimited = replace(
        plan,
        assets=tuple(
            replace(s, limit_w=(10_000.0, 10_000.0)) if s.asset_id == "pv" else s
            for s in plan.assets
        ),
    )
    assert not curtailing(unlimited, "pv", START)
    assert {c.target: c.value for c in _at(unlimited)}["pv"] == 100.0
    assert {c.target: c.reason for c in _at(unlimited)}["pv"].endswith("no limit")
