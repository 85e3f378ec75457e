"""The running service on real components: Modbus simulators, a real broker, SQLite/PostgreSQL.

A small site (one household with meter, PV inverter and battery, the school's PV plant) on a
simulated clock: the service starts, cycles, stores readings, keeps a curtailment alive by
refreshing it before the inverter reverts it, re-applies live setpoints after a restart under
the same ids, and reports degraded readiness with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.service import Service
from kernel.clock import SimClock
from kernel.commands import Command, CommandKind, CommandStatus
from protocols.mqtt.embedded import free_port
from scheduler.settings import Settings
from scheduler.site import Site, site_from_data
from sims.modbus.fleet import ModbusFleet
from sims.profiles import ClearSkyPv
from store.schema import commands, raw_readings
from tests.conftest import BrokerAddress
from tests.db_fixtures import create_pg_database, drop_pg_database, pg_url

NOON = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)  # 12:00 in Berlin, midsummer


def small_site(fleet: ModbusFleet, *, poll_s: float = 30, revert_s: int = 120) -> Site:
    def dev(name: str, driver: str) -> dict[str, Any]:
        ep = fleet.endpoint(name)
        return {"name": name, "driver": driver, "host": ep.host, "port": ep.port,
                "unit_id": ep.unit_id, "timeout_s": 0.5}  # fmt: skip

    return site_from_data(
        {
            "site": {"name": "Teststadt", "latitude": 51.37, "longitude": 7.70},
            "devices": [
                dev("h1-meter", "eastron_sdm630"),
                dev("h1-pv", "sunspec"),
                dev("h1-battery", "battery_inverter"),
                dev("school-pv", "sunspec"),
            ],
            "tariffs": [
                {
                    "name": "standard",
                    "valid_from": "2026-01-01T00:00:00+01:00",
                    "supplier_price_eur_per_kwh": "0.32",
                    "community_price_eur_per_kwh": "0.22",
                    "feed_in_price_eur_per_kwh": "0.08",
                }
            ],
            "members": [
                {
                    "id": "h1",
                    "name": "Familie Test",
                    "meter": "h1-meter",
                    "pv": [{"device": "h1-pv", "rated_power_w": 8000}],
                    "battery": {
                        "device": "h1-battery",
                        "capacity_wh": 10000,
                        "max_charge_w": 5000,
                        "max_discharge_w": 5000,
                    },
                }
            ],
            "communities": [
                {
                    "id": "quartier",
                    "name": "Quartier",
                    "members": [{"member": "h1"}],
                    "keys": [{"kind": "dynamic"}],
                    "tariffs": ["standard"],
                }
            ],
            "dispatch": {"poll_interval_s": poll_s, "revert_s": revert_s, "read_timeout_s": 1.0},
        }
    )


def settings_for(db: str, broker: BrokerAddress, client: str) -> Settings:
    return Settings(
        mode="demo",
        database_url=db,
        broker_url=f"mqtt://{broker.host}:{broker.port}",
        broker_client_id=client,
    )


@pytest.fixture
async def fleet() -> AsyncIterator[ModbusFleet]:
    async with small_fleet(SimClock(NOON, speed=60)) as f:
        yield f


@contextlib.asynccontextmanager
async def small_fleet(clock: SimClock) -> AsyncIterator[ModbusFleet]:
    f = ModbusFleet(clock)
    f.add_household("h1", gateway="gw-h1", annual_kwh=4000, kwp=8.0, battery_wh=10_000,
                    lat=51.37, lon=7.70)  # fmt: skip
    f.add_inverter("school-pv", gateway="gw-school", rated_w=30_000,
                   pv=ClearSkyPv(lat=51.37, lon=7.70, kwp=30.0))  # fmt: skip
    async with f:
        yield f


async def count(service: Service, stmt: Any) -> int:
    async with service.store.engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def test_service_cycles_stores_readings_and_is_ready(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    site = small_site(fleet)
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
    async with Service(settings, site, fleet.clock) as service:
        await service.bus.wait_connected(10)
        report = await service.wait_for_cycle(timeout_s=10)
        assert report.snapshot.unavailable == frozenset()
        assert report.snapshot.value("school-pv", "power_w") is not None
        assert report.snapshot.value("school-pv", "power_w") > 5_000  # noon in June
        assert report.snapshot.value("h1-meter", "import_energy_wh") is not None
        await service.wait_for_cycle(timeout_s=10)
        await asyncio.sleep(0.3)  # the writer's batch commits behind the cycle
        stored = await count(
            service,
            select(func.count())
            .select_from(raw_readings)
            .where(raw_readings.c.device_id == "school-pv"),
        )
        assert stored >= 2 * len(report.snapshot.readings["school-pv"])
        ready = await service.readiness()
        assert ready.status == "ok", ready.reasons
        assert {c.name for c in ready.checks} == {"broker", "database", "cycle", "journal"}
        text = service.metrics.render().decode()
        assert 'waldstadt_device_available{device="h1-pv"} 1.0' in text
        assert "waldstadt_cycle_seconds_count" in text


async def test_curtailment_is_obeyed_and_refreshed_before_the_inverter_reverts_it(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    site = small_site(fleet, poll_s=20, revert_s=90)  # refresh due at 45 s, cycles every 20 s
    clock = fleet.clock
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
    sim = fleet.sim("school-pv")
    async with Service(settings, site, clock) as service:
        cmd = Command("curtail-school-1", "school-pv", CommandKind.POWER_LIMIT_PCT, 30.0,
                      clock.now() + timedelta(minutes=10), "test", revert_s=90)  # fmt: skip
        [res] = await service.command_writer.write([cmd])
        assert res.status is CommandStatus.APPLIED
        first_write = sim.limit.written_at
        # 4 revert times of clock time (6 real s at 60x): without refreshes it would revert
        deadline = clock.monotonic() + 4 * 90
        while clock.monotonic() < deadline:
            await service.wait_for_cycle(timeout_s=10)
        report = await service.wait_for_cycle(timeout_s=10)
        assert sim.limit.enabled
        assert sim.limit.pct == pytest.approx(30.0)
        assert sim.limit.written_at > first_write + 90  # rewritten since, by the cycle
        assert sim.reverts == 0
        power = report.snapshot.value("school-pv", "power_w")
        assert power is not None
        assert power <= 0.30 * 30_000 + 50
        assert service.journal is not None
        await service.journal.flush()
        rows = await count(
            service,
            select(func.count())
            .select_from(commands)
            .where(commands.c.command_id == "curtail-school-1"),
        )
        assert rows == 1  # refreshes are not new commands


async def test_restart_reapplies_live_setpoints_under_the_same_ids_without_duplicates(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, db_url: str
) -> None:
    site = small_site(fleet)
    clock = fleet.clock
    settings = settings_for(db_url, mqtt_broker, unique)
    sim = fleet.sim("school-pv")
    cmd = Command("curtail-restart", "school-pv", CommandKind.POWER_LIMIT_PCT, 40.0,
                  clock.now() + timedelta(minutes=30), "test", revert_s=120)  # fmt: skip
    async with Service(settings, site, clock) as service:
        [res] = await service.command_writer.write([cmd])
        assert res.status is CommandStatus.APPLIED
    written_before = sim.limit.written_at
    async with Service(settings, site, clock) as service:
        assert [(r.command.command_id, r.status) for r in service.reapplied] == [
            ("curtail-restart", CommandStatus.APPLIED)
        ]
        assert sim.limit.written_at > written_before
        assert sim.limit.pct == pytest.approx(40.0)
        # the same command issued again (a decider's next cycle) is a duplicate, not a write
        [again] = await service.command_writer.write([cmd])
        assert again.status is CommandStatus.DUPLICATE
        assert service.journal is not None
        await service.journal.flush()
        rows = await count(service, select(func.count()).select_from(commands))
        assert rows == 1


async def test_readiness_is_degraded_with_the_reason_when_the_broker_is_gone(
    fleet: ModbusFleet, restartable_broker: Any, unique: str, tmp_path: Path
) -> None:
    site = small_site(fleet)
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", restartable_broker, unique)
    async with Service(settings, site, fleet.clock) as service:
        await service.bus.wait_connected(10)
        await service.wait_for_cycle(timeout_s=10)
        assert (await service.readiness()).status == "ok"
        restartable_broker.stop()
        for _ in range(100):
            ready = await service.readiness()
            if ready.status == "degraded":
                break
            await asyncio.sleep(0.1)
        assert ready.status == "degraded"
        [reason] = ready.reasons
        assert reason.startswith("broker: ")
        assert f"{restartable_broker.port}" in reason
        restartable_broker.start()
        await service.bus.wait_connected(20)
        assert (await service.readiness()).status == "ok"


async def test_readiness_is_degraded_when_the_database_is_unreachable(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str
) -> None:
    site = small_site(fleet)
    name = await create_pg_database()
    try:
        settings = settings_for(pg_url(name), mqtt_broker, unique)
        async with Service(settings, site, fleet.clock) as service:
            await service.wait_for_cycle(timeout_s=10)
            assert (await service.readiness()).status == "ok"
            await drop_pg_database(name)
            ready = await service.readiness()
            assert ready.status == "degraded"
            assert any(r.startswith("database: ") and name in r for r in ready.reasons), (
                ready.reasons
            )
    finally:
        await drop_pg_database(name)


async def test_dispatch_plans_at_start_the_cycle_writes_its_setpoints_and_quarter_hours_settle(
    mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    start = datetime(2026, 6, 21, 9, 59, 0, tzinfo=UTC)  # the quarter-hour ends in 60 s
    clock = SimClock(start, speed=60)
    async with small_fleet(clock) as fleet:
        site = small_site(fleet)
        settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
        async with Service(settings, site, clock) as service:
            for _ in range(100):
                if "quartier" in service.jobs.plans:
                    break
                await asyncio.sleep(0.1)
            plan = service.jobs.plans["quartier"]
            assert plan.status.value in {"optimal", "feasible"}, plan.status
            stored = await service.store.plans.latest("quartier", clock.now())
            assert stored is not None
            report = await service.wait_for_cycle(timeout_s=10)
            sources = {c.source for c in report.commands}
            assert sources == {"dispatch:quartier"}
            assert "h1-battery" in {c.target for c in report.commands}
            # past 10:00:30 (metering and provisional settlement of the quarter-hour)
            await clock.sleep(
                (datetime(2026, 6, 21, 10, 0, 40, tzinfo=UTC) - clock.now()).total_seconds()
            )
            assert service.scheduler.lateness.get("metering"), "metering job did not run"
            assert service.scheduler.lateness.get("dispatch:quartier")
            text = service.metrics.render().decode()
            assert "waldstadt_job_errors_total{" not in text, text
            assert 'waldstadt_plan_status{status="' in text


async def test_a_sunspec_device_away_at_start_is_discovered_in_the_background(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    site = small_site(fleet)
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
    await fleet.stop_gateway("gw-school")
    async with Service(settings, site, fleet.clock) as service:
        assert set(service.devices.away) == {"school-pv"}
        report = await service.wait_for_cycle(timeout_s=10)
        assert "school-pv" in report.snapshot.unavailable
        assert "not discovered yet" in report.snapshot.errors["school-pv"]
        assert report.snapshot.available("h1-pv")  # the others are not held up
        await fleet.start_gateway("gw-school")
        for _ in range(100):
            if not service.devices.away:
                break
            await asyncio.sleep(0.1)
        assert service.devices.away == {}
        assert service.devices.discovery_failures["school-pv"] >= 1
        report = await service.wait_for_cycle(timeout_s=10)
        report = await service.wait_for_cycle(timeout_s=10)
        assert report.snapshot.available("school-pv")
        assert "school-pv" in service.devices.writable


async def test_readiness_is_degraded_when_the_last_cycle_is_too_old(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    site = small_site(fleet, poll_s=20)
    clock = fleet.clock
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
    async with Service(settings, site, clock) as service:
        await service.wait_for_cycle(timeout_s=10)
        assert (await service.readiness()).status == "ok"
        service.scheduler.pause()  # the polling stops: as if the loop were stuck
        await clock.sleep(3 * 20 + 5)
        ready = await service.readiness()
        assert ready.status == "degraded"
        [reason] = ready.reasons
        assert reason.startswith("cycle: last cycle ")
        assert "more than 3 × 20 s" in reason
        service.scheduler.resume()
        await service.wait_for_cycle(timeout_s=10)
        assert (await service.readiness()).status == "ok"


async def test_readings_reach_the_influxdb_mirror_when_it_is_configured(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    import httpx

    from tests.store.test_store_mirror import BINARY, VictoriaMetrics

    if BINARY is None:
        pytest.fail("victoria-metrics is not installed (.ci/run installs it)")
    server = VictoriaMetrics(free_port(), tmp_path / "vm")
    await asyncio.to_thread(server.start)
    try:
        site = small_site(fleet)
        settings = Settings(
            mode="demo",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
            broker_url=f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}",
            broker_client_id=unique,
            influx_url=server.url,
        )

        def school_samples() -> int:
            httpx.post(f"{server.url}/internal/force_flush", timeout=10)
            response = httpx.post(
                f"{server.url}/api/v1/export",
                data={"match[]": '{__name__="reading_value",device_id="school-pv"}', "start": "0"},
                timeout=10,
            )
            response.raise_for_status()
            return sum(len(json.loads(line)["values"]) for line in response.text.splitlines())

        async with Service(settings, site, fleet.clock) as service:
            found = 0
            for _ in range(60):
                await asyncio.sleep(0.5)
                found = await asyncio.to_thread(school_samples)
                if found:
                    break
            assert found > 0
            assert service.scheduler.lateness.get("mirror")
            assert "waldstadt_outbox_depth" in service.metrics.render().decode()
    finally:
        await asyncio.to_thread(server.stop)
