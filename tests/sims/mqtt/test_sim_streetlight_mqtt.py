"""The streetlight fleet and the controller API over a real broker, on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kernel.clock import ManualClock
from protocols.mqtt import Backoff, Bus, BusConfig
from protocols.streetlight import (
    LightSchedule,
    LightState,
    NodeDimmer,
    ScheduleStep,
    StreetlightController,
    state_readings,
)
from sims.streetlight import StreetlightFleet

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def cfg(broker: object, client_id: str, **kw: object) -> BusConfig:
    return BusConfig(
        client_id=client_id,
        host=broker.host,  # type: ignore[attr-defined]
        port=broker.port,  # type: ignore[attr-defined]
        backoff=Backoff(initial_s=0.05, cap_s=0.5),
        **kw,  # type: ignore[arg-type]
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


async def test_fleet_of_100_follows_commands_and_runs_its_schedule_when_the_controller_is_silent(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = ManualClock(T0)
    states: dict[str, list[LightState]] = {}
    online: dict[str, bool] = {}

    async def on_state(node_id: str, state: LightState) -> None:
        states.setdefault(node_id, []).append(state)

    async def on_availability(node_id: str, is_online: bool) -> None:
        online[node_id] = is_online

    def last(node_id: str) -> LightState | None:
        return states.get(node_id, [None])[-1]

    node_ids = [f"pole-{i:03d}" for i in range(100)]  # the demo town: 100 luminaires
    async with (
        Bus(cfg(mqtt_broker, f"fleet-{unique}")) as fleet_bus,
        Bus(cfg(mqtt_broker, f"ctl-{unique}")) as ctl_bus,
    ):
        ctl = StreetlightController(ctl_bus, prefix)
        await ctl.watch_states(on_state)
        await ctl.watch_availability(on_availability)
        await ctl_bus.wait_connected()
        fleet = StreetlightFleet.build(
            fleet_bus, clock, node_ids, prefix=prefix, report_interval_s=60.0
        )
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(fleet.run(), name="fleet")
            await eventually(lambda: all(online.get(n) for n in node_ids))
            await eventually(lambda: all(last(n) is not None for n in node_ids))
            assert last("pole-000").mode == "fallback"  # type: ignore[union-attr]
            assert last("pole-000").level_pct == 100.0  # type: ignore[union-attr]

            # commands, through the capability seam
            dimmer = NodeDimmer(ctl, "pole-001")
            expires = T0 + timedelta(minutes=5)
            await dimmer.set_dim_level_pct(40.0, 0.0, "c-1", expires)
            await eventually(lambda: last("pole-001").last_command_id == "c-1")  # type: ignore[union-attr]
            s = last("pole-001")
            assert s is not None
            assert (s.mode, s.level_pct) == ("controller", 40.0)
            await ctl.send_level("pole-001", 90.0, 0.0, "c-1", expires)  # duplicate id
            await ctl.send_level("pole-001", 90.0, 0.0, "c-0", T0 - timedelta(seconds=1))  # late
            await ctl.send_level("pole-001", 20.0, 10.0, "c-2", expires)
            await eventually(lambda: last("pole-001").last_command_id == "c-2")  # type: ignore[union-attr]
            assert fleet.outcomes == {"applied": 2, "duplicate": 1, "expired": 1}

            # a retained schedule: the controller goes silent, the node runs it
            sched = LightSchedule(
                issued_at=T0,
                steps=[
                    ScheduleStep(at=T0 + timedelta(minutes=20), level_pct=60.0),
                    ScheduleStep(at=T0 + timedelta(hours=6), level_pct=25.0, ramp_s=300),
                ],
                fallback_level_pct=100.0,
                controller_timeout_s=900.0,
            )
            await ctl.push_schedule("pole-001", sched)
            await ctl_bus.flush()
            await eventually(lambda: fleet.nodes["pole-001"].schedule is not None)
            clock.advance(1300)  # > 900 s without a command, after the 20-minute step
            await eventually(lambda: last("pole-001").mode == "schedule")  # type: ignore[union-attr]
            s = last("pole-001")
            assert s is not None
            assert s.level_pct == 60.0
            r = {x.channel: x for x in state_readings("pole-001", s)}
            assert r["level_pct"].value == 60.0
            assert r["energy_wh"].value is not None
            assert r["energy_wh"].value > 0

            # the controller speaks again
            await ctl.send_level("pole-001", 10.0, 0.0, "c-3", clock.now() + timedelta(minutes=1))
            await eventually(lambda: last("pole-001").last_command_id == "c-3")  # type: ignore[union-attr]
            s = last("pole-001")
            assert s is not None
            assert (s.mode, s.level_pct) == ("controller", 10.0)
            runner.cancel()
        await fleet.stop()
        await eventually(lambda: not any(online.values()))
        await ctl.clear_schedule("pole-001")
        await ctl_bus.flush()


async def test_a_node_finds_its_retained_schedule_after_a_reboot(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = ManualClock(T0)
    sched = LightSchedule(
        issued_at=T0,
        steps=[ScheduleStep(at=T0 - timedelta(hours=1), level_pct=35.0)],
        fallback_level_pct=100.0,
        controller_timeout_s=600.0,
    )
    async with Bus(cfg(mqtt_broker, f"ctl-{unique}")) as ctl_bus:
        ctl = StreetlightController(ctl_bus, prefix)
        await ctl.push_schedule("pole-9", sched)
        await ctl_bus.flush()
        async with Bus(cfg(mqtt_broker, f"node-{unique}")) as node_bus:
            fleet = StreetlightFleet.build(node_bus, clock, ["pole-9"], prefix=prefix)
            await fleet.start()
            node = fleet.nodes["pole-9"]
            await eventually(lambda: node.schedule is not None)
            assert node.mode == "schedule"
            assert node.level_at(clock.now()) == 35.0
        await ctl.clear_schedule("pole-9")
        await ctl_bus.flush()
