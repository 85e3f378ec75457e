"""The rolling dispatch job: site + snapshot + store history → problem → plan → store, commands.

Real store (SQLite and PostgreSQL), real solver, a ManualClock; snapshots built from Readings.
The community is small (3–5 members, 16 quarter-hours) so every test runs in well under 5 s.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kernel.clock import ManualClock
from kernel.commands import CommandKind
from kernel.errors import ConfigError
from kernel.readings import Reading
from scheduler.dispatch import DispatchJob
from scheduler.observability import Metrics
from scheduler.site import Site, load_site, site_from_data
from scheduler.snapshot import Snapshot
from store import Store
from vpp.dispatch import (
    Battery,
    EvCharger,
    PlanStatus,
    Pv,
    SolveOptions,
    StorageHeater,
)
from vpp.dispatch.payload import plan_from_payload
from vpp.forecast import LoadProfile, PvSite, bdew_load_w, clear_sky_power_w

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday 15 June 2026, 12:07 local (CEST): sun high, not a holiday in NW
T0 = datetime(2026, 6, 15, 10, 7, tzinfo=UTC)
QH0 = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
QH = timedelta(minutes=15)
N = 16


def site_data(**dispatch: Any) -> dict[str, Any]:
    """Four households: h1 PV + battery, h2 PV, h3 EV, h4 storage heater (plain load)."""
    devices = [
        {"name": f"{h}-meter", "driver": "eastron_sdm630", "host": "10.0.0.1", "unit_id": i}
        for i, h in enumerate(("h1", "h2", "h3", "h4"), start=1)
    ]
    devices += [
        {"name": "h1-pv", "driver": "sunspec", "host": "10.0.0.2", "unit_id": 1},
        {"name": "h1-bat", "driver": "battery_inverter", "host": "10.0.0.2", "unit_id": 2},
        {"name": "h2-pv", "driver": "sunspec", "host": "10.0.0.2", "unit_id": 3},
        {"name": "h3-ev", "driver": "ev_charger", "host": "10.0.0.2", "unit_id": 4},
        {"name": "h4-heat", "driver": "storage_heater", "host": "10.0.0.2", "unit_id": 5},
    ]
    return {
        "site": {"name": "Test", "latitude": 51.37, "longitude": 7.70},
        "devices": devices,
        "tariffs": [
            {
                "name": "standard",
                "valid_from": "2026-01-01T00:00:00+01:00",
                "supplier_price_eur_per_kwh": "0.30",
                "community_price_eur_per_kwh": "0.20",
                "feed_in_price_eur_per_kwh": "0.08",
                "network_fee_residual_eur_per_kwh": "0.02",
                "network_fee_shared_eur_per_kwh": "0.01",
            }
        ],
        "members": [
            {
                "id": "h1",
                "name": "Eins",
                "meter": "h1-meter",
                "annual_kwh": 4000,
                "pv": [{"device": "h1-pv", "rated_power_w": 8000}],
                "battery": {
                    "device": "h1-bat",
                    "capacity_wh": 10000,
                    "max_charge_w": 5000,
                    "max_discharge_w": 5000,
                    "min_soc_pct": 10,
                },
            },
            {
                "id": "h2",
                "name": "Zwei",
                "meter": "h2-meter",
                "annual_kwh": 3000,
                "pv": [{"device": "h2-pv", "rated_power_w": 6000}],
            },
            {
                "id": "h3",
                "name": "Drei",
                "meter": "h3-meter",
                "annual_kwh": 3500,
                "ev": {
                    "device": "h3-ev",
                    "max_power_w": 11000,
                    "energy_needed_wh": 10000,
                    "arrival": "11:00",
                    "departure": "14:00",
                    "smart_charging": True,
                },
            },
            {
                "id": "h4",
                "name": "Vier",
                "meter": "h4-meter",
                "load_profile": "G25",
                "annual_kwh": 6000,
                "storage_heater": {
                    "device": "h4-heat",
                    "max_power_w": 6000,
                    "energy_needed_wh": 6000,
                    "window_start": "13:00",
                    "window_end": "18:00",
                },
            },
        ],
        "communities": [
            {
                "id": "quartier",
                "name": "Quartier",
                "members": [{"member": m} for m in ("h1", "h2", "h3", "h4")],
                "keys": [{"kind": "dynamic"}],
                "tariffs": ["standard"],
            }
        ],
        "dispatch": {"horizon_qh": N, **dispatch},
    }


def make_site(edit: Callable[[dict[str, Any]], None] | None = None, **dispatch: Any) -> Site:
    data = site_data(**dispatch)
    if edit is not None:
        edit(data)
    return site_from_data(copy.deepcopy(data))


def r(device: str, channel: str, value: float, ts: datetime = T0) -> Reading:
    unit = {"soc_pct": "%"}.get(channel, "W")
    return Reading(device, channel, value, unit, ts)


def clear_sky_w(rated_w: float, start: datetime = QH0) -> float:
    return clear_sky_power_w(PvSite(51.37, 7.70, 1000.0), start, 1)[0] / 1000.0 * rated_w


def snapshot(
    *,
    unavailable: tuple[str, ...] = (),
    soc_pct: float = 50.0,
    pv_share: float = 0.5,
    extra: tuple[Reading, ...] = (),
) -> Snapshot:
    """Every device answered (unless listed); PV at ``pv_share`` of its clear-sky power."""
    readings = [
        r("h1-meter", "power_w", -2000.0),
        r("h2-meter", "power_w", -1500.0),
        r("h3-meter", "power_w", 400.0),
        r("h4-meter", "power_w", 600.0),
        r("h1-pv", "power_w", pv_share * clear_sky_w(8000)),
        r("h2-pv", "power_w", pv_share * clear_sky_w(6000)),
        r("h1-bat", "soc_pct", soc_pct),
        r("h1-bat", "battery_power_w", 0.0),
        r("h3-ev", "load_power_w", 0.0),
        r("h4-heat", "load_power_w", 0.0),
        *extra,
    ]
    return Snapshot.build(
        T0, [x for x in readings if x.device_id not in unavailable], unavailable=unavailable
    )


def job_for(
    site: Site, store: Store, clock: ManualClock, metrics: Metrics | None = None, **kw: Any
) -> DispatchJob:
    return DispatchJob(site, "quartier", store, clock, metrics or Metrics(), **kw)


def gauge(metrics: Metrics, status: PlanStatus) -> float | None:
    return metrics.registry.get_sample_value("waldstadt_plan_status", {"status": status.value})


# --- the problem ------------------------------------------------------------------------------


async def test_problem_from_site_snapshot_and_tariffs(store: Store) -> None:
    """Horizon from the current qh; SoC, PV ratio, EV/heater windows, prices from the tariffs."""

    def second_tariff(data: dict[str, Any]) -> None:
        cheap = dict(data["tariffs"][0], name="summer", valid_from="2026-06-15T13:00:00+02:00")
        cheap["supplier_price_eur_per_kwh"] = "0.25"
        data["tariffs"].append(cheap)
        data["communities"][0]["tariffs"].append("summer")

    site = make_site(second_tariff)
    job = job_for(site, store, ManualClock(T0), history_qh=0)
    inputs = await job.build_problem(snapshot(), QH0)
    p = inputs.problem
    assert p.start == QH0
    assert p.n_qh == N
    # 12:00 local + 4 qh = 13:00 local: the second tariff takes over there
    assert p.prices.import_eur_per_kwh[:4] == pytest.approx([0.32] * 4)
    assert p.prices.import_eur_per_kwh[4:] == pytest.approx([0.27] * (N - 4))
    assert p.prices.feed_in_eur_per_kwh == pytest.approx([0.08] * N)
    assert p.prices.community_eur_per_kwh == pytest.approx([0.20] * N)
    assert p.prices.network_fee_eur_per_kwh == pytest.approx([0.01] * N)

    assets = {a.asset_id: a for m in p.members for a in m.assets}
    bat = assets["h1-bat"]
    assert isinstance(bat, Battery)
    assert bat.soc_wh == pytest.approx(5000.0)
    assert bat.min_soc_wh == pytest.approx(1000.0)
    pv = assets["h1-pv"]
    assert isinstance(pv, Pv)
    clear = clear_sky_power_w(PvSite(51.37, 7.70, 8000.0), QH0, N)
    # measured half of the clear sky now → half of the clear sky for the whole horizon
    assert pv.forecast_w == pytest.approx([0.5 * c for c in clear], rel=1e-6)
    assert pv.curtailable
    ev = assets["h3-ev"]
    assert isinstance(ev, EvCharger)
    # 11:00–14:00 local, horizon from 12:00 local: in progress, departs at qh 8
    assert (ev.arrival_qh, ev.departure_qh) == (0, 8)
    assert ev.energy_needed_wh == pytest.approx(10000.0)
    heat = assets["h4-heat"]
    assert isinstance(heat, StorageHeater)
    # 13:00–18:00 local: from qh 4; the window ends after the horizon (qh 24 > 16): the
    # 8 qh after it could store 6 kW · 2 h = 12 kWh ≥ 6 kWh, so nothing is due inside it
    assert (heat.window_start_qh, heat.window_end_qh) == (4, 24)
    assert heat.energy_needed_wh == 0.0
    assert heat.capacity_wh == pytest.approx(6000.0)
    assert inputs.controllable == {
        ("h1", "h1-pv"),
        ("h1", "h1-bat"),
        ("h2", "h2-pv"),
        ("h3", "h3-ev"),
        ("h4", "h4-heat"),
    }
    assert inputs.notes == ()


async def test_load_forecast_corrected_by_the_members_history(store: Store) -> None:
    """h2 consumed twice its profile in the last 4 h (meter + PV); h3 its profile, with a car
    charging on top (meter − wallbox); h4 has no history."""
    history_qh = 16
    past_start = QH0 - history_qh * QH
    h2_past = bdew_load_w(LoadProfile.H25, 3000.0, past_start, history_qh)
    h3_past = bdew_load_w(LoadProfile.H25, 3500.0, past_start, history_qh)
    readings = []
    for k, (p2, p3) in enumerate(zip(h2_past, h3_past, strict=True)):
        ts = past_start + k * QH + timedelta(minutes=5)
        # consumption = meter (+ import) + PV: 2·profile = (2·profile − 1000) + 1000
        readings += [
            r("h2-meter", "power_w", 2 * p2 - 1000.0, ts),
            r("h2-pv", "power_w", 1000.0, ts),
            r("h3-meter", "power_w", p3 + 5000.0, ts),
            r("h3-ev", "load_power_w", 5000.0, ts),
        ]
    await store.readings.write(readings, now=T0)
    job = job_for(make_site(), store, ManualClock(T0), history_qh=history_qh)
    problem = (await job.build_problem(snapshot(), QH0)).problem
    loads = {m.member_id: m.load_w for m in problem.members}
    h2_base = bdew_load_w(LoadProfile.H25, 3000.0, QH0, N)
    assert loads["h2"] == pytest.approx([2 * v for v in h2_base], rel=1e-6)
    h3_base = bdew_load_w(LoadProfile.H25, 3500.0, QH0, N)
    assert loads["h3"] == pytest.approx(h3_base, rel=1e-6)
    h4_base = bdew_load_w(LoadProfile.G25, 6000.0, QH0, N)
    assert loads["h4"] == pytest.approx(h4_base, rel=1e-6)


async def ev_in(store: Store, snap: Snapshot) -> EvCharger:
    job = job_for(make_site(), store, ManualClock(T0), history_qh=0)
    problem = (await job.build_problem(snap, QH0)).problem
    ev = next(a for m in problem.members for a in m.assets if a.asset_id == "h3-ev")
    assert isinstance(ev, EvCharger)
    return ev


async def test_energy_drawn_in_the_session_lowers_what_the_ev_still_needs(store: Store) -> None:
    # the car arrived at 11:00 local (09:00 UTC) and drew 8 kW for 30 min = 4 kWh
    drawn = [
        r("h3-ev", "load_power_w", 8000.0, QH0 - QH * k + timedelta(minutes=1)) for k in (1, 2)
    ]
    await store.readings.write(drawn, now=T0)
    assert (await ev_in(store, snapshot())).energy_needed_wh == pytest.approx(6000.0)
    # the wallbox's own count of the session wins over the stored power
    counted = snapshot(extra=(r("h3-ev", "session_energy_wh", 7500.0),))
    assert (await ev_in(store, counted)).energy_needed_wh == pytest.approx(2500.0)


async def test_no_car_yet_is_planned_from_the_next_quarter_hour(store: Store) -> None:
    ev = await ev_in(store, snapshot(extra=(r("h3-ev", "operating_state", 0.0),)))
    assert (ev.arrival_qh, ev.departure_qh) == (1, 8)
    assert ev.energy_needed_wh == pytest.approx(10000.0)
    ev = await ev_in(store, snapshot(extra=(r("h3-ev", "operating_state", 2.0),)))
    assert ev.arrival_qh == 0


def test_unknown_community_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nowhere"):
        DispatchJob(make_site(), "nowhere", None, ManualClock(T0), Metrics())  # type: ignore[arg-type]


async def test_no_tariff_in_force_names_the_community(store: Store) -> None:
    def late_tariff(data: dict[str, Any]) -> None:
        data["tariffs"][0]["valid_from"] = "2026-07-01T00:00:00+02:00"

    job = job_for(make_site(late_tariff), store, ManualClock(T0))
    with pytest.raises(ConfigError, match=r"communities\[quartier\]\.tariffs.*no tariff"):
        await job.run(snapshot())


# --- the round --------------------------------------------------------------------------------


async def test_round_stores_the_plan_records_metrics_and_gives_commands(store: Store) -> None:
    clock = ManualClock(T0)
    metrics = Metrics()
    site = make_site(revert_s=600)
    job = job_for(site, store, clock, metrics)
    plan = await job.run(snapshot())
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.start == QH0
    assert plan.n_qh == N
    stored = await store.plans.get("quartier", QH0)
    assert stored is not None
    assert stored.payload["plan_id"] == plan.plan_id
    # the stored document gives back the same plan
    again, controllable, notes = plan_from_payload(stored.payload)
    assert again == plan
    assert controllable == job.controllable
    assert notes == ()
    assert metrics.registry.get_sample_value("waldstadt_solve_seconds_count") == 1.0
    assert gauge(metrics, PlanStatus.OPTIMAL) == 1.0
    assert gauge(metrics, PlanStatus.FALLBACK_SAFE_DEFAULT) == 0.0
    assert await store.alarms.active() == []

    cmds = job.commands(clock.now())
    by_target = {c.target: c for c in cmds}
    assert set(by_target) == {"h1-pv", "h1-bat", "h2-pv", "h3-ev", "h4-heat"}
    assert by_target["h1-pv"].kind is CommandKind.POWER_LIMIT_PCT
    assert by_target["h1-bat"].kind is CommandKind.BATTERY_POWER_W
    assert by_target["h3-ev"].kind is CommandKind.LOAD_POWER_W
    assert by_target["h4-heat"].kind is CommandKind.LOAD_POWER_W
    assert by_target["h1-bat"].value == pytest.approx(
        plan.asset("h1", "h1-bat").power_w[0], abs=0.1
    )
    assert by_target["h3-ev"].value == pytest.approx(plan.asset("h3", "h3-ev").power_w[0], abs=0.1)
    for c in cmds:
        assert c.expires_at == QH0 + QH
        assert c.revert_s == 600
        assert c.source == "dispatch:quartier"
        # the quarter-hour in the site's zone: 10:00 UTC is 12:00 in Berlin
        assert c.reason.startswith(f"plan {plan.plan_id} qh 12:00: ")
    assert QH0.astimezone(BERLIN).hour == 12
    # the same quarter-hour gives the same ids; the next one new ids and its own setpoints
    later = job.commands(T0 + timedelta(minutes=7))
    assert [c.command_id for c in later] == [c.command_id for c in cmds]
    nxt = {c.target: c for c in job.commands(QH0 + QH + timedelta(seconds=1))}
    assert {c.command_id for c in nxt.values()}.isdisjoint(c.command_id for c in cmds)
    assert nxt["h1-bat"].value == pytest.approx(plan.asset("h1", "h1-bat").power_w[1], abs=0.1)
    assert nxt["h1-bat"].expires_at == QH0 + 2 * QH
    assert job.commands(QH0 + N * QH) == []
    assert job.decide(snapshot()) == cmds
    # the next round changes numbers only: the kept model is updated, not rebuilt
    clock.set(QH0 + QH)
    plan2 = await job.run(snapshot(soc_pct=60.0))
    assert plan2.start == QH0 + QH
    assert (job.model_cache.cold_rounds, job.model_cache.warm_rounds) == (1, 1)
    assert metrics.registry.get_sample_value("waldstadt_solve_seconds_count") == 2.0


async def test_feeder_export_limit_curtails_pv_as_percent_of_rating(store: Store) -> None:
    def tight(data: dict[str, Any]) -> None:
        data["communities"][0]["feeder_export_limit_w"] = 500.0
        data["members"][0].pop("battery")
        data["members"][2].pop("ev")
        data["members"][3].pop("storage_heater")

    clock = ManualClock(T0)
    job = job_for(make_site(tight), store, clock, history_qh=0)
    plan = await job.run(snapshot(pv_share=1.0))
    pv = {c.target: c for c in job.commands(clock.now())}
    assert pv["h1-pv"].kind is CommandKind.POWER_LIMIT_PCT
    total_limit = 0.0
    for member, device, rated in (("h1", "h1-pv", 8000.0), ("h2", "h2-pv", 6000.0)):
        limit_w = plan.asset(member, device).limit_w
        assert limit_w is not None
        assert pv[device].value == pytest.approx(100.0 * limit_w[0] / rated, abs=0.01)
        total_limit += pv[device].value / 100.0 * rated
    # at noon two systems of 14 kW clear sky cannot export more than 0.5 kW + the load
    assert total_limit < 0.5 * clear_sky_w(14000.0)
    assert plan.status is PlanStatus.OPTIMAL
    # a limited inverter says nothing about the sky: its low output keeps the ratio (1 here)
    nxt = QH0 + QH
    clock.set(nxt)
    problem = (await job.build_problem(snapshot(pv_share=0.3), nxt)).problem
    h1_pv = next(a for m in problem.members for a in m.assets if a.asset_id == "h1-pv")
    assert isinstance(h1_pv, Pv)
    assert h1_pv.forecast_w[0] == pytest.approx(clear_sky_w(8000.0, nxt), rel=1e-6)


async def test_silent_devices_do_not_stop_the_plan(store: Store) -> None:
    clock = ManualClock(T0)
    job = job_for(make_site(), store, clock, history_qh=0)
    plan = await job.run(snapshot(unavailable=("h1-bat", "h2-pv", "h3-ev", "h4-meter")))
    assert plan.status is PlanStatus.OPTIMAL
    planned = {a.asset_id for a in plan.assets}
    assert "h1-bat" not in planned
    assert "h3-ev" not in planned
    assert {"h1-pv", "h2-pv", "h4-heat"} <= planned  # silent PV still counts, as forecast
    assert {c.target for c in job.commands(clock.now())} == {"h1-pv", "h4-heat"}
    stored = await store.plans.get("quartier", QH0)
    assert stored is not None
    notes = " | ".join(stored.payload["notes"])
    assert "battery h1-bat of h1" in notes
    assert "PV h2-pv of h2 unavailable" in notes
    assert "EV charger h3-ev of h3 unavailable" in notes


async def test_example_site_plans_a_day_with_every_device_silent(store: Store) -> None:
    """The committed example site, 96 qh, nothing answered: a plan, no setpoints, notes."""
    site = load_site(Path(__file__).parents[2] / "examples" / "site.yaml")
    clock = ManualClock(T0)
    job = DispatchJob(site, "quartier", store, clock, Metrics(), history_qh=0)
    plan = await job.run(Snapshot.build(T0, [], unavailable=[d.name for d in site.devices]))
    assert plan.n_qh == site.dispatch.horizon_qh == 96
    assert not plan.status.is_fallback
    assert {m.member_id for m in plan.members} == {"hh01", "hh02", "hh03", "school", "stadtwerk-pv"}
    assert {a.asset_id for a in plan.assets} == {"hh01-pv", "hh02-pv", "school-pv", "stadtwerk-pv"}
    assert job.commands(clock.now()) == []
    assert len(job.notes) == 7  # four PV forecast-only, battery, wallbox, heater left out


async def test_battery_without_a_state_of_charge_is_left_out(store: Store) -> None:
    clock = ManualClock(T0)
    job = job_for(make_site(), store, clock, history_qh=0)
    snap = Snapshot.build(
        T0,
        [*snapshot().readings["h1-pv"].values(), Reading.unavailable("h1-bat", "soc_pct", T0)],
    )
    plan = await job.run(snap)
    assert "h1-bat" not in {a.asset_id for a in plan.assets}
    assert any("h1-bat" in n for n in job.notes)


async def test_a_full_battery_is_not_emptied_into_the_grid_by_the_horizon(store: Store) -> None:
    # Found in the demo: with no value for energy left at the horizon's end, every battery
    # discharged at once and the community exported at dawn. The plan must end (softly) where
    # the battery started; meanwhile it may shift energy, but not throw it away.
    clock = ManualClock(T0)
    job = job_for(make_site(), store, clock, history_qh=0)
    plan = await job.run(snapshot(soc_pct=90.0, pv_share=0.0))
    battery = plan.asset("h1", "h1-bat")
    assert battery.soc_wh is not None
    assert battery.soc_wh[-1] >= 9000.0 - 1.0
    assert not any(v.constraint == "terminal_soc" for v in plan.violations)


async def test_second_process_keeps_the_stored_plan(
    store: Store, open_store: Callable[..., Store]
) -> None:
    """F10: two processes plan the same quarter-hour from different readings: one plan."""
    site = make_site()
    async with open_store() as other:
        a = job_for(site, store, ManualClock(T0), created_by="node-a")
        b = job_for(site, other, ManualClock(T0), created_by="node-b")
        plan_a, plan_b = await asyncio.gather(
            a.run(snapshot(soc_pct=20.0)), b.run(snapshot(soc_pct=90.0))
        )
        assert plan_a == plan_b
        stored = await store.plans.between("quartier", QH0, QH0 + N * QH)
        assert len(stored) == 1
        winner = a if stored[0].created_by == "node-a" else b
        assert winner.plan == plan_a
        assert a.commands(T0) == b.commands(T0)
        # a restarted process in the same quarter-hour keeps it too, without solving
        metrics = Metrics()
        c = job_for(site, other, ManualClock(T0 + timedelta(minutes=5)), metrics)
        assert await c.run(snapshot(soc_pct=55.0)) == plan_a
        assert metrics.registry.get_sample_value("waldstadt_solve_seconds_count") == 0.0


# --- when the plan cannot be what was asked ---------------------------------------------------


async def test_impossible_ev_need_is_a_soft_violation_with_an_alarm(store: Store) -> None:
    """The EV need is soft: 60 kWh by 14:00 at 11 kW cannot be met; the plan says by how much."""

    def greedy(data: dict[str, Any]) -> None:
        data["members"][2]["ev"]["energy_needed_wh"] = 60_000

    clock = ManualClock(T0)
    metrics = Metrics()
    job = job_for(make_site(greedy), store, clock, metrics, history_qh=0)
    plan = await job.run(snapshot())
    assert plan.status is PlanStatus.FEASIBLE_WITH_VIOLATIONS
    (miss,) = [v for v in plan.violations if v.constraint == "energy_need"]
    assert miss.asset_id == "h3-ev"
    # 8 qh at 11 kW = 22 kWh possible
    assert miss.amount_wh == pytest.approx(60_000 - 22_000, rel=1e-3)
    assert plan.asset("h3", "h3-ev").power_w[:8] == pytest.approx([11_000.0] * 8, abs=1.0)
    assert gauge(metrics, PlanStatus.FEASIBLE_WITH_VIOLATIONS) == 1.0
    (alarm,) = await store.alarms.active()
    assert alarm.alarm_key == "dispatch:quartier:violations"
    assert "energy_need" in alarm.message
    assert "h3-ev" in alarm.message


async def test_infeasible_hard_feeder_limit_falls_back_with_a_critical_alarm(
    store: Store,
) -> None:
    """With a hard feeder limit below the §14a floor of an EV, the LP is infeasible."""

    def tight(data: dict[str, Any]) -> None:
        data["communities"][0]["feeder_import_limit_w"] = 3000.0
        data["members"][2]["ev"]["smart_charging"] = False
        for m in data["members"]:
            m.pop("pv", None)
            m.pop("battery", None)

    clock = ManualClock(T0)
    metrics = Metrics()
    site = make_site(tight)
    job = job_for(
        site, store, clock, metrics, history_qh=0,
        solve_options=SolveOptions(hard_feeder_limit=True),
    )  # fmt: skip
    plan = await job.run(snapshot())
    assert plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT
    assert any(a.code == "dispatch_solver_failed" for a in plan.alarms)
    assert plan.asset("h3", "h3-ev").power_w[0] == pytest.approx(4200.0)  # at the floor
    assert gauge(metrics, PlanStatus.FALLBACK_SAFE_DEFAULT) == 1.0
    (alarm,) = [a for a in await store.alarms.active() if a.kind == "dispatch_fallback"]
    assert alarm.severity == "critical"
    assert alarm.alarm_key == "dispatch:quartier:fallback"
    stored = await store.plans.get("quartier", QH0)
    assert stored is not None
    assert stored.payload["status"] == "fallback_safe_default"
    # the car leaves: the next round solves again and the alarm clears
    clock.set(QH0 + QH)
    plan2 = await job.run(snapshot(unavailable=("h3-ev",)))
    assert not plan2.status.is_fallback
    assert [a for a in await store.alarms.active() if a.kind == "dispatch_fallback"] == []


async def test_solver_time_limit_falls_back_to_the_last_stored_plan(store: Store) -> None:
    """A solve beyond solve_time_limit_s: the last valid plan (read back from the store after
    a restart) shifted forward, with an alarm."""
    clock = ManualClock(T0)
    first = await job_for(make_site(), store, clock, history_qh=0).run(snapshot())
    assert first.status is PlanStatus.OPTIMAL
    clock.set(QH0 + QH)
    metrics = Metrics()
    hurried = job_for(make_site(solve_time_limit_s=1e-9), store, clock, metrics, history_qh=0)
    plan = await hurried.run(snapshot())
    assert plan.status is PlanStatus.FALLBACK_LAST_PLAN
    assert plan.start == QH0 + QH
    assert any("time limit" in a.message.lower() for a in plan.alarms)
    # the setpoints follow the last plan shifted by one quarter-hour
    ev_before = first.asset("h3", "h3-ev").power_w
    assert plan.asset("h3", "h3-ev").power_w[: N - 1] == pytest.approx(ev_before[1:], abs=1.0)
    (alarm,) = [a for a in await store.alarms.active() if a.kind == "dispatch_fallback"]
    assert alarm.kind == "dispatch_fallback"
    assert alarm.severity == "warning"
    assert gauge(metrics, PlanStatus.FALLBACK_LAST_PLAN) == 1.0
    assert hurried.commands(clock.now())  # a fallback plan still gives setpoints
