"""A night over a real broker: the simulated nodes follow the service's commands; a node that
loses the controller runs its retained program (or its fallback) and comes back."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from kernel.clock import SimClock
from lighting.calendar import Calendar
from lighting.config import LightingSite
from lighting.examples import PROGRAMS
from lighting.overrides import Override, Scope
from lighting.schedule import Programs
from protocols.mqtt import Bus
from protocols.streetlight import LightCommand, LightSchedule, StreetlightController, dump
from scheduler.lighting import LightingServiceConfig
from sims.streetlight import StreetlightFleet
from tests.scheduler.lighting.harness import (
    bus_config,
    eventually,
    nodes_for,
    running_fleet,
    running_service,
    street_site,
)

# 2026-11-25 (a Wednesday, program 'Wohnstraße' in Dortmund): 'evening' 70 % at 22:00 local
# = 21:00 UTC, 'after midnight' 30 % at 23:17 UTC.
EVENING = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


def at_levels(fleet: StreetlightFleet, level_pct: float, mode: str = "controller") -> bool:
    return all(n.target_pct == level_pct and n.mode == mode for n in fleet.nodes.values())


@pytest.mark.slow
async def test_nodes_follow_the_program_steps_with_reason_chains(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(EVENING - timedelta(minutes=8), speed=120)  # 4 s to the step
    site = street_site(4)
    config = LightingServiceConfig(prefix=prefix, watch_uplinks=False)
    async with (
        running_fleet(
            mqtt_broker, f"fleet-{unique}", clock, nodes_for(site, clock), prefix
        ) as fleet,
        running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as service,
    ):
        # before 22:00 local: step 'on' at 100 %, commanded by the service
        assert service.decisions["l0"].level_pct == 100.0
        assert "step 'on' 100 %" in service.decisions["l0"].reason_text
        await eventually(lambda: at_levels(fleet, 100.0))
        assert all(n.last_command_id.startswith("tick-") for n in fleet.nodes.values())  # type: ignore[union-attr]
        # every node holds the retained schedule of three nights, floor applied
        await eventually(lambda: all(n.schedule is not None for n in fleet.nodes.values()))
        sched = fleet.nodes["l2"].schedule
        assert sched is not None
        assert [s.level_pct for s in sched.steps[:5]] == [100.0, 70.0, 30.0, 70.0, 0.0]
        assert len(sched.steps) == 5 + 5 + 4  # Wed, Thu 'Wohnstraße', Fri 'Wochenende'
        assert sched.steps[1].at == EVENING
        # at 22:00 local the step changes and only the changed levels go out
        await eventually(lambda: at_levels(fleet, 70.0))
        decision = service.decisions["l3"]
        assert decision.level_pct == 70.0
        assert decision.ramp_s == 300.0
        assert decision.reason_text.startswith("program 'Wohnstraße' step 'evening' 70 %")
        assert fleet.outcomes["applied"] >= 8  # 4 × 100 %, 4 × 70 %
        assert service.stats.schedules_pushed == 4


@pytest.mark.slow
async def test_a_node_that_loses_the_controller_runs_its_program_and_returns(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    start = EVENING + timedelta(minutes=20)  # 'evening' 70 % until 23:17 UTC
    clock = SimClock(start, speed=200)
    site = street_site(3)
    # the operator dims the segment to 45 %: the controller's level differs from the program
    override = Override("dim", Scope.SEGMENT, "s1", 45.0, start, start + timedelta(hours=1))
    config = LightingServiceConfig(prefix=prefix, controller_timeout_s=600.0, watch_uplinks=False)
    async with running_fleet(
        mqtt_broker, f"fleet-{unique}", clock, nodes_for(site, clock), prefix
    ) as fleet:
        async with running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc:
            await svc.set_overrides([override])
            await eventually(lambda: at_levels(fleet, 45.0))
            assert "override 'dim' (segment) 45 %" in svc.decisions["l1"].reason_text
            await eventually(lambda: all(n.schedule for n in fleet.nodes.values()))
        # the service is gone; the nodes keep its last level until their timeout (600 s
        # after their last command), then run the retained program (70 % at this hour)
        assert at_levels(fleet, 45.0)
        await eventually(lambda: at_levels(fleet, 70.0, "schedule"))
        # a node without a schedule runs its fallback level
        async with Bus(bus_config(mqtt_broker, f"ops-{unique}")) as ops:
            await ops.wait_connected()
            await StreetlightController(ops, prefix).clear_schedule("l0")
            await ops.flush()
        await eventually(lambda: fleet.nodes["l0"].schedule is None)
        await eventually(lambda: fleet.nodes["l0"].mode == "fallback")
        assert fleet.nodes["l0"].target_pct == 100.0
        assert (fleet.nodes["l1"].mode, fleet.nodes["l1"].target_pct) == ("schedule", 70.0)

        # the controller comes back: commands again, and a fresh schedule for l0
        svc2_config = LightingServiceConfig(
            prefix=prefix, controller_timeout_s=600.0, watch_uplinks=False
        )
        async with running_service(mqtt_broker, f"svc-{unique}", clock, site, svc2_config) as svc2:
            await svc2.set_overrides([override])
            await eventually(lambda: at_levels(fleet, 45.0))
            await eventually(lambda: fleet.nodes["l0"].schedule is not None)


async def test_expired_and_duplicate_commands_of_the_service(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(EVENING + timedelta(minutes=30), speed=60)
    site = street_site(2)
    config = LightingServiceConfig(prefix=prefix, command_expiry_s=600.0, watch_uplinks=False)
    seen: list[LightCommand] = []
    async with (
        running_fleet(
            mqtt_broker, f"fleet-{unique}", clock, nodes_for(site, clock), prefix
        ) as fleet,
        Bus(bus_config(mqtt_broker, f"spy-{unique}")) as spy,
    ):
        await spy.wait_connected()

        async def capture(inbound: object) -> None:
            seen.append(inbound.payload)  # type: ignore[attr-defined]

        await spy.subscribe(f"{prefix}/l0/cmd", LightCommand, capture)
        async with running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc:
            await eventually(lambda: len(seen) >= 1 and at_levels(fleet, 70.0))
            first = seen[0]
            # the command carries its id and an expiry command_expiry_s after the tick
            assert svc.decisions["l0"].level_pct == first.level_pct == 70.0
            assert timedelta(0) < first.expires_at - clock.now() <= timedelta(seconds=600)
            node = fleet.nodes["l0"]
            assert node.last_command_id == first.command_id
            before = dict(fleet.outcomes)

            # the same command again (a redelivery): applied once
            await spy.publish(f"{prefix}/l0/cmd", dump(first))
            # a late command (expired on arrival) with another level: ignored
            late = LightCommand(
                command_id="late-1",
                level_pct=5.0,
                ramp_s=0.0,
                expires_at=clock.now() - timedelta(seconds=1),
            )
            await spy.publish(f"{prefix}/l0/cmd", dump(late))
            await eventually(
                lambda: (
                    fleet.outcomes["duplicate"] > before.get("duplicate", 0)
                    and fleet.outcomes["expired"] > before.get("expired", 0)
                )
            )
            assert node.target_pct == 70.0
            assert node.last_command_id == first.command_id


async def test_a_changed_site_gets_new_schedules_and_levels_and_removed_nodes_none(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(EVENING + timedelta(minutes=30), speed=60)
    site = street_site(3)
    config = LightingServiceConfig(prefix=prefix, watch_uplinks=False)
    async with (
        running_fleet(
            mqtt_broker, f"fleet-{unique}", clock, nodes_for(site, clock), prefix
        ) as fleet,
        running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc,
    ):
        await eventually(lambda: at_levels(fleet, 70.0))
        await eventually(lambda: all(n.schedule is not None for n in fleet.nodes.values()))
        # the engineer switches the street to full light all night and removes pole l2
        full_light = Programs(PROGRAMS.programs, {"default": Calendar("Voll", (), "Volllicht")})
        smaller = street_site(2)
        changed = LightingSite(index=smaller.index, programs=full_light, co2_g_per_kwh=380.0)
        await svc.reconfigure(changed)
        assert "program 'Volllicht' step 'on' 100 %" in svc.decisions["l0"].reason_text
        await eventually(lambda: fleet.nodes["l0"].target_pct == 100.0)
        await eventually(lambda: fleet.nodes["l1"].target_pct == 100.0)
        await eventually(lambda: fleet.nodes["l2"].schedule is None)
        sched = fleet.nodes["l0"].schedule
        assert sched is not None
        assert [s.level_pct for s in sched.steps] == [100.0, 0.0] * 3
        assert "l2" not in svc.decisions


async def test_the_schedules_are_pushed_again_each_day_at_push_time(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    # 12:29 local: the daily push at 12:30 comes 60 s (1 s real) after the start
    clock = SimClock(datetime(2026, 11, 25, 11, 29, tzinfo=UTC), speed=60)
    site = street_site(2)
    config = LightingServiceConfig(prefix=prefix, push_at=time(12, 30), watch_uplinks=False)
    issued: list[datetime] = []

    async def capture(inbound: object) -> None:
        issued.append(inbound.payload.issued_at)  # type: ignore[attr-defined]

    async with Bus(bus_config(mqtt_broker, f"spy-{unique}")) as spy:
        await spy.wait_connected()
        await spy.subscribe(f"{prefix}/l0/schedule", LightSchedule, capture)
        async with running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc:
            assert svc.stats.schedules_pushed == 2  # at start
            await eventually(lambda: svc.stats.schedules_pushed == 4)
            await eventually(lambda: len(issued) >= 2)
            assert clock.now() >= datetime(2026, 11, 25, 11, 30, tzinfo=UTC)
            assert issued[-1] >= datetime(2026, 11, 25, 11, 30, tzinfo=UTC) > issued[0]
