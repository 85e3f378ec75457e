"""An operator's override, end to end: the web API stores it, the running service writes it to
the device, holds the device against the plan while it is in force, refreshes it, and hands the
device back to the plan when it expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.accounts import ensure_demo_users
from api.app import create_app
from app.service import Service
from kernel.clock import SimClock
from kernel.commands import CommandKind
from scheduler.overrides import OVERRIDE_PREFIX
from sims.modbus.fleet import ModbusFleet
from tests.conftest import BrokerAddress
from tests.scheduler.test_service import NOON, settings_for, small_fleet, small_site


@pytest.fixture
async def fleet() -> AsyncIterator[ModbusFleet]:
    async with small_fleet(SimClock(NOON, speed=60)) as f:
        yield f


async def test_an_override_holds_the_battery_against_the_plan_until_it_expires(
    fleet: ModbusFleet, mqtt_broker: BrokerAddress, unique: str, tmp_path: Path
) -> None:
    site = small_site(fleet, poll_s=20, revert_s=120)
    clock = fleet.clock
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", mqtt_broker, unique)
    battery = fleet.sim("h1-battery")
    async with Service(settings, site, clock) as service:
        logins = await ensure_demo_users(service.store, "h1")
        user, password = next((u, p) for u, p, role in logins if role == "operator")
        app = create_app(settings, runtime=service, store=service.store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as web:
            token = (
                await web.post("/api/v1/auth/token", data={"username": user, "password": password})
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            # a device the site does not have is refused, naming the field
            bad = await web.post(
                "/api/v1/commands/overrides",
                json={
                    "target": "h9-battery",
                    "kind": "battery_power_w",
                    "value": -1000,
                    "expires_in_s": 600,
                    "reason": "test",
                },
                headers=auth,
            )
            assert bad.status_code == 422
            assert bad.json()["detail"][0]["field"] == "body.target"
            r = await web.post(
                "/api/v1/commands/overrides",
                json={
                    "target": "h1-battery",
                    "kind": "battery_power_w",
                    "value": -1500,
                    "expires_in_s": 600,
                    "reason": "feeder test",
                },
                headers=auth,
            )
            assert r.status_code == 201, r.text
            override_id = r.json()["command_id"]
            assert override_id.startswith(OVERRIDE_PREFIX)

        # the next cycles write it; the plan's battery setpoint stays out of the batch
        seen_plan_battery = False
        deadline = clock.monotonic() + 300  # longer than the revert time: refreshed
        while clock.monotonic() < deadline:
            report = await service.wait_for_cycle(timeout_s=10)
            for res in report.results:
                c = res.command
                if c.target == "h1-battery" and c.kind is CommandKind.BATTERY_POWER_W:
                    seen_plan_battery |= c.command_id != override_id
        assert not seen_plan_battery
        assert battery.setpoint_w == -1500
        assert battery.enabled
        assert battery.reverts == 0

        # after it expires the plan's setpoint applies again
        expiry = clock.monotonic() + 600
        while clock.monotonic() < expiry + 40:
            report = await service.wait_for_cycle(timeout_s=15)
        await asyncio.sleep(0)
        ids = [
            r.command.command_id
            for r in report.results
            if r.command.target == "h1-battery" and r.command.kind is CommandKind.BATTERY_POWER_W
        ]
        in_force = [
            c.command_id for c in service.command_writer.in_force() if c.target == "h1-battery"
        ]
        assert override_id not in in_force
        assert in_force or ids, "the plan's battery setpoint is back"
