"""Faults of docs/domain.md §5 on the running service (town simulators, a broker of the test's own,
SQLite and PostgreSQL, an accelerated clock): a silent device (F1), the broker restarted under
a telemetry stream (F4), the service killed while curtailing and restarted mid-interval (F2,
F3), the InfluxDB mirror away for a while (F6), and a day the solver cannot plan (F9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from api.accounts import add_user
from api.app import create_app
from api.auth import Role
from app.service import Service
from kernel.clock import SimClock
from kernel.commands import CommandKind
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig
from protocols.mqtt.telemetry import encode_telemetry, telemetry_topic
from scheduler.settings import Settings
from sims.modbus.inverter import SunSpecInverterSim
from sims.town import SimTown
from store import Store
from store.schema import commands, member_intervals
from tests.api.conftest import AUDIT_KEY, FAST_HASHER, PASSWORD, SECRET, login
from tests.e2e.conftest import (
    COMMUNITY,
    PLANT,
    eventually,
    running_town,
    settings_for,
    site_for,
    small_town,
    until,
)
from tests.store.test_store_mirror import BINARY as VM_BINARY
from tests.store.test_store_mirror import VictoriaMetrics, free_port

BERLIN = ZoneInfo("Europe/Berlin")
#: a sunny Monday: the feeder's export limit makes the plan curtail at noon
NOON = datetime(2026, 6, 22, 12, 0, tzinfo=BERLIN)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@contextlib.asynccontextmanager
async def operator_client(service: Service, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The web app on the running service, with an operator logged in."""
    settings = Settings(
        mode="production", database_url=db_url, secret_key=SECRET, audit_key=AUDIT_KEY
    )  # type: ignore[arg-type]
    app = create_app(settings, runtime=service, store=service.store)
    app.state.waldstadt.hasher = FAST_HASHER
    await add_user(
        service.store, "olga", PASSWORD, Role.OPERATOR, now=service.clock.now(), hasher=FAST_HASHER
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        token = await login(client, "olga")
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


async def scalar(service: Service, stmt: Any) -> Any:
    async with service.store.engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()


async def next_plan_from(service: Service, start: datetime, timeout_s: float = 20.0) -> Any:
    """The community's plan for the quarter-hour starting at ``start`` (once it is there)."""
    return await eventually(
        lambda: (p := service.jobs.plans.get(COMMUNITY)) is not None and p.start >= start and p,
        timeout_s=timeout_s,
    )


# -- F1: a device goes silent -------------------------------------------------------------------


async def test_a_silent_device_is_unavailable_others_unaffected_dispatch_plans_without_it(
    restartable_broker: Any, db_url: str
) -> None:
    def quick_timeouts(data: dict[str, Any]) -> None:
        # a device's own Modbus timeout well inside the cycle's read timeout (whose real
        # floor is 0.5 s at any clock speed), so that the units queued behind the silent one
        # on its gateway still answer within the cycle
        for dev in data["devices"]:
            dev["timeout_s"] = 0.15

    clock = SimClock(NOON + timedelta(minutes=9), speed=120)
    async with running_town(clock, db_url, restartable_broker, poll_s=30, edit=quick_timeouts) as r:
        service = r.service
        report = await service.wait_for_cycle()
        assert report.snapshot.unavailable == frozenset()
        first = await next_plan_from(service, NOON)  # the plan made at start
        r.sim.modbus.silence("h04-battery")
        report = await eventually(
            lambda: (
                (rep := service.last_report) is not None
                and "h04-battery" in rep.snapshot.unavailable
                and rep
            ),
            timeout_s=15,
        )
        # unavailable, not zero and not stale; every other device still read
        assert report.snapshot.unavailable == frozenset({"h04-battery"})
        assert report.snapshot.value("h04-battery", "soc_pct") is None
        for dev in r.site.devices:
            if dev.name != "h04-battery":
                assert report.snapshot.available(dev.name), dev.name
        metrics = service.metrics.render().decode()
        assert 'waldstadt_device_available{device="h04-battery"} 0.0' in metrics
        assert 'waldstadt_device_available{device="h01-battery"} 1.0' in metrics
        # the operator's assets: unavailable with the reason and no values, the others live
        async with operator_client(service, db_url) as ops:
            listed = (await ops.get("/api/v1/assets")).json()
            assert listed["service_running"] is True
            assert listed["total"] == len(r.site.devices)
            by_device = {a["device"]: a for a in listed["assets"]}
            silent = (await ops.get("/api/v1/assets/h04-battery")).json()
            assert silent["available"] is False
            assert silent["reason"]
            assert silent["readings"] == []
            assert silent["member_id"] == "h04"
            down = (await ops.get("/api/v1/assets", params={"available": "false"})).json()
            assert [a["device"] for a in down["assets"]] == ["h04-battery"]
            other = by_device["h01-battery"]
            assert other["available"] is True
            assert other["roles"] == ["battery"]
            soc = {x["channel"]: x["value"] for x in other["readings"]}["soc_pct"]
            assert soc is not None
            assert 0 <= soc <= 100
            now = (await ops.get("/api/v1/community/now")).json()
            assert [c["community_id"] for c in now] == [COMMUNITY]
            assert now[0]["members"] == len(r.site.community(COMMUNITY).members)
        # the next plan made from a snapshot without it leaves the battery out, says why,
        # and gives it no setpoint
        qh = floor_to_qh(clock.now()) + timedelta(minutes=15)
        if first.start >= qh:  # the plan made at start was late and covers that one already
            qh += timedelta(minutes=15)
        plan = await next_plan_from(service, qh)
        job = service.jobs.dispatch[COMMUNITY]
        assert ("h04", "h04-battery") not in job.controllable
        assert any("h04-battery" in note for note in job.notes), job.notes
        assert ("h01", "h01-battery") in job.controllable
        assert plan.status.value in {"optimal", "feasible", "feasible_with_violations"}
        await service.wait_for_cycle()  # one that may have decided before the plan came
        later = await service.wait_for_cycle()
        targets = {c.target for c in later.commands}
        assert "h04-battery" not in targets
        assert "h01-battery" in targets
        # it answers again: available in the next cycles
        r.sim.modbus.silence("h04-battery", False)
        await eventually(
            lambda: (
                (rep := service.last_report) is not None and rep.snapshot.available("h04-battery")
            ),
            timeout_s=15,
        )


# -- F4: the broker restarts under a QoS 1 telemetry stream ----------------------------------


async def test_broker_restart_loses_no_qos1_reading_and_the_service_is_ready_again(
    restartable_broker: Any, db_url: str
) -> None:
    clock = SimClock(NOON, speed=30)
    n = 60
    # a meter that publishes over MQTT is named in the site file (else: unknown_device)
    edit = telemetry_devices("mqtt-meter-1")
    async with running_town(clock, db_url, restartable_broker, poll_s=30, edit=edit) as r:
        service = r.service
        await service.wait_for_cycle()
        assert (await service.readiness()).status == "ok"
        device = Bus(
            BusConfig(
                client_id="e2e-mqtt-meter",
                host=restartable_broker.host,
                port=restartable_broker.port,
            )
        )
        async with device:
            await device.wait_connected(10)
            topic = telemetry_topic("mqtt-meter-1")
            t0 = clock.now().replace(microsecond=0)
            for i in range(n):
                if i == n // 3:
                    restartable_broker.stop()
                    degraded = await eventually(
                        lambda: _degraded(service), timeout_s=15, step_s=0.05
                    )
                    assert any(x.startswith("broker: ") for x in degraded)
                if i == n // 2:
                    restartable_broker.start()
                payload = encode_telemetry(
                    t0 + timedelta(seconds=i), {"power_w": float(i), "import_energy_wh": 1000.0 + i}
                )
                await device.publish(topic, payload, qos=1)
                await asyncio.sleep(0.01)
            await device.flush(30)

        async def stored() -> bool:
            got = await service.store.readings.between(
                "mqtt-meter-1", "power_w", t0, t0 + timedelta(seconds=n)
            )
            return len(got) == n

        await eventually(stored, timeout_s=30, step_s=0.2)
        got = await service.store.readings.between(
            "mqtt-meter-1", "power_w", t0, t0 + timedelta(seconds=n)
        )
        assert [rd.value for rd in got] == [float(i) for i in range(n)]  # each once, all there
        await service.bus.wait_connected(20)
        await service.wait_for_cycle()
        ready = await eventually(lambda: _ready(service), timeout_s=15)
        assert ready


def telemetry_devices(*names: str) -> Callable[[dict[str, Any]], None]:
    """A site edit: ``names`` publish telemetry over MQTT (the broker section knows them)."""

    def edit(data: dict[str, Any]) -> None:
        broker = data.setdefault("broker", {})
        broker["telemetry_devices"] = [*broker.get("telemetry_devices", []), *names]

    return edit


async def _degraded(service: Service) -> list[str] | None:
    ready = await service.readiness()
    return list(ready.reasons) if ready.status == "degraded" else None


async def _ready(service: Service) -> bool:
    return (await service.readiness()).status == "ok"


# -- F2 + F3: killed while curtailing, restarted mid-interval ---------------------------------


@contextlib.asynccontextmanager
async def service_task(
    settings: Any, site: Any, clock: SimClock
) -> AsyncIterator[tuple[asyncio.Task[None], asyncio.Future[Service]]]:
    started: asyncio.Future[Service] = asyncio.get_running_loop().create_future()

    async def run() -> None:
        async with Service(settings, site, clock) as service:
            started.set_result(service)
            await asyncio.Event().wait()

    task = asyncio.create_task(run(), name="e2e service")
    try:
        yield task, started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_killed_while_curtailing_the_inverter_reverts_and_a_restart_duplicates_nothing(
    restartable_broker: Any, db_url: str
) -> None:
    clock = SimClock(NOON - timedelta(minutes=1), speed=60)
    town = small_town()
    async with SimTown(town, clock, restartable_broker.host, restartable_broker.port) as sim:
        edit = telemetry_devices("mqtt-meter-2")
        site = site_for(town, sim, poll_s=20, revert_s=120, edit=edit)
        settings = settings_for(db_url, restartable_broker.host, restartable_broker.port)
        plant = sim.modbus.sim(PLANT)
        assert isinstance(plant, SunSpecInverterSim)
        telemetry = Bus(BusConfig(client_id="e2e-restart-meter", host=restartable_broker.host,
                                  port=restartable_broker.port))  # fmt: skip
        async with telemetry:
            # -- first life: plan at 12:00, the plant curtailed ------------------------------
            async with service_task(settings, site, clock) as (task, started):
                service = await asyncio.wait_for(started, 20)
                await service.bus.wait_connected(10)
                await next_plan_from(service, NOON.astimezone(UTC))
                await eventually(
                    lambda: plant.limit.enabled and plant.limit.pct < 100, timeout_s=15
                )
                await until(clock, NOON + timedelta(minutes=7))  # mid-interval
                before_ids = await plant_command_ids(service, floor_to_qh(clock.now()))
                task.cancel()  # the service dies here (no more refreshes)
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            killed_at = clock.now()
            # every command the first life wrote, once its journal is recorded (the journal
            # records in the background: a query before the end can miss the last cycle's)
            before_all = await all_command_ids(db_url)
            # -- while it is away: readings over MQTT pile up in its persistent session; the
            #    plant's limit runs out after revert_s and it reverts by itself (F2)
            t0 = killed_at.replace(microsecond=0)
            for i in range(20):
                payload = encode_telemetry(t0 + timedelta(seconds=i), {"power_w": float(i)})
                await telemetry.publish(telemetry_topic("mqtt-meter-2"), payload, qos=1)
            await telemetry.flush(10)

            def reverted() -> bool:
                plant.refresh()  # the inverter's own state now (nobody polls it meanwhile)
                return not plant.limit.enabled

            await eventually(reverted, timeout_s=15)
            assert plant.reverts >= 1
            assert (clock.now() - killed_at).total_seconds() >= 0.5 * 120  # not before its time
            # -- second life, same interval: live setpoints re-applied under their ids -------
            restart_qh = clock.now()
            async with Service(settings, site, clock) as service:
                assert floor_to_qh(restart_qh) == floor_to_qh(killed_at), "not mid-interval"
                reapplied = {res.command.command_id: res for res in service.reapplied}
                assert reapplied, "no setpoint re-applied after the restart"
                assert any(res.command.target == PLANT for res in reapplied.values())
                assert plant.limit.enabled
                assert plant.limit.pct < 100
                await service.wait_for_cycle()
                await service.wait_for_cycle()
                # no duplicate command: what was re-applied is what was written before, under
                # the same ids, and the plant got no new setpoint for the interval it was
                # killed in (the stored plan is kept, not solved again)
                assert set(reapplied) <= before_all
                assert before_ids
                after_ids = await plant_command_ids(service, floor_to_qh(killed_at))
                assert after_ids == before_ids

                # no reading lost: what was published while it was down is stored
                async def all_stored() -> bool:
                    got = await service.store.readings.between(
                        "mqtt-meter-2", "power_w", t0, t0 + timedelta(seconds=20)
                    )
                    return len(got) == 20

                await eventually(all_stored, timeout_s=10, step_s=0.2)
                # the quarter-hours metered before the kill are not restated
                restated = await scalar(
                    service,
                    select(func.count())
                    .select_from(member_intervals)
                    .where(member_intervals.c.version > 1),
                )
                assert restated == 0


async def plant_command_ids(service: Service, qh: datetime) -> set[str]:
    """Ids of the plant's setpoints for the quarter-hour starting at ``qh``."""
    async with service.store.engine.connect() as conn:
        rows = await conn.execute(
            select(commands.c.command_id).where(
                commands.c.target == PLANT, commands.c.expires_at == qh + timedelta(minutes=15)
            )
        )
        return {row[0] for row in rows}


async def all_command_ids(db_url: str) -> set[str]:
    async with Store(db_url) as store, store.engine.connect() as conn:
        return {row[0] for row in await conn.execute(select(commands.c.command_id))}


def floor_to_qh(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)


# -- F6: the InfluxDB mirror away for a while -----------------------------------------------


async def test_mirror_down_then_back_the_outbox_drains_in_order_nothing_lost(
    restartable_broker: Any, db_url: str, tmp_path: Path
) -> None:
    if VM_BINARY is None:
        pytest.fail("victoria-metrics is not installed (.ci/run installs it)")
    vm = VictoriaMetrics(free_port(), tmp_path / "vm")
    vm.start()
    try:
        clock = SimClock(NOON, speed=60)
        extra = {"influx_url": vm.url, "influx_bucket": "e2e"}
        async with running_town(
            clock, db_url, restartable_broker, poll_s=20, settings_extra=extra
        ) as r:
            service = r.service
            outbox = service.store.outbox
            await eventually(lambda: _pending_zero_after_cycles(service), timeout_s=20)
            vm.stop()
            await until(clock, clock.now() + timedelta(minutes=3))  # 9 cycles while away
            stats = await outbox.stats()
            assert stats.pending > 0
            assert "waldstadt_outbox_depth" in service.metrics.render().decode()
            vm.start()
            await eventually(lambda: _pending_zero(service), timeout_s=60, step_s=0.2)
            stats = await outbox.stats()
            assert stats.dropped == 0
            # The service keeps polling: a reading stored after the drain above is queued
            # anew. Take what is stored now, then wait until the outbox is empty once more:
            # each of these readings was queued in its own commit, so it has been sent.
            stored = await service.store.readings.between(
                "h01-meter", "power_w", NOON - timedelta(hours=1), clock.now()
            )
            await eventually(lambda: _pending_zero(service), timeout_s=60, step_s=0.2)
            mirrored = await asyncio.to_thread(_vm_series, vm, "h01-meter", "power_w")
            stored_after = await service.store.readings.between(
                "h01-meter", "power_w", NOON - timedelta(hours=1), clock.now()
            )
            assert len(stored) >= 10
            by_ts = dict(mirrored)
            for rd in stored:  # every stored reading is in the mirror, with its value
                ms = (rd.ts - EPOCH) // timedelta(milliseconds=1)
                assert ms in by_ts, f"reading at {rd.ts.isoformat()} not mirrored"
                assert by_ts[ms] == pytest.approx(rd.value, rel=1e-9)
            # and nothing is in the mirror that the store does not hold
            stored_ms = {(rd.ts - EPOCH) // timedelta(milliseconds=1) for rd in stored_after}
            assert set(by_ts) <= stored_ms
    finally:
        vm.stop()


async def _pending_zero_after_cycles(service: Service) -> bool:
    return service.cycles >= 2 and await _pending_zero(service)


async def _pending_zero(service: Service) -> bool:
    return (await service.store.outbox.stats()).pending == 0


def _vm_series(vm: VictoriaMetrics, device: str, channel: str) -> list[tuple[int, float]]:
    httpx.post(f"{vm.url}/internal/force_flush", timeout=10)
    response = httpx.post(
        f"{vm.url}/api/v1/export",
        data={
            "match[]": f'{{__name__="reading_value",device_id="{device}",channel="{channel}"}}',
            "start": "0",
        },
        timeout=10,
    )
    response.raise_for_status()
    out: list[tuple[int, float]] = []
    for line in response.text.splitlines():
        series = json.loads(line)
        out.extend(zip(series["timestamps"], series["values"], strict=True))
    return out


# -- F9: a day the solver cannot plan ----------------------------------------------------------


async def test_an_unsolvable_day_gets_a_fallback_plan_with_an_alarm_and_safe_commands(
    restartable_broker: Any, db_url: str
) -> None:
    def impossible(data: dict[str, Any]) -> None:
        # the feeder takes almost nothing, the car wants more than it can get, and the
        # solver has no time at all
        data["communities"][0]["feeder_import_limit_w"] = 500.0
        data["communities"][0]["feeder_export_limit_w"] = 500.0

    clock = SimClock(NOON, speed=60)
    async with running_town(
        clock, db_url, restartable_broker, poll_s=20, solve_time_limit_s=1e-9, edit=impossible
    ) as r:
        service = r.service
        plan = await next_plan_from(service, NOON.astimezone(UTC))
        assert plan.status.is_fallback, plan.status
        alarms = await eventually(lambda: _fallback_alarms(service), timeout_s=10)
        assert alarms[0].alarm_key == f"dispatch:{COMMUNITY}:fallback"
        stored = await service.store.plans.get(COMMUNITY, floor_to_qh(NOON))
        assert stored is not None
        assert stored.payload["status"] == plan.status.value
        report = await service.wait_for_cycle()
        assert report.commands, "a fallback plan still gives setpoints"
        ratings = {b.device: b for m in r.site.members if (b := m.battery) is not None}
        for cmd in report.commands:
            assert cmd.revert_s == r.site.dispatch.revert_s  # every setpoint reverts by itself
            assert cmd.expires_at > report.snapshot.at
            if cmd.kind is CommandKind.POWER_LIMIT_PCT:
                assert 0.0 <= cmd.value <= 100.0
            if cmd.target in ratings:
                b = ratings[cmd.target]
                assert -b.max_discharge_w <= cmd.value <= b.max_charge_w
        # the loop goes on: cycles keep coming, nothing failed in the jobs
        await service.wait_for_cycle()
        assert "waldstadt_job_errors_total{" not in service.metrics.render().decode()


async def _fallback_alarms(service: Service) -> list[Any]:
    return [a for a in await service.store.alarms.active() if a.kind == "dispatch_fallback"]
