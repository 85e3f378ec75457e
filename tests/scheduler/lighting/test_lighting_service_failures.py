"""Failure detection over a real broker: simulated nodes with injected faults, each kind of
alarm raised once with time and luminaire, and cleared when the fault goes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from kernel.clock import SimClock
from lighting.config import LightingSite
from lighting.examples import PROGRAMS
from lighting.failures import FailureKind, FailureThresholds
from lighting.site import Luminaire, build_index
from scheduler.lighting import Change, LightingServiceConfig
from sims.streetlight import LuminaireSpec, NodeLogic
from tests.scheduler.lighting.harness import (
    Recorder,
    eventually,
    running_fleet,
    running_service,
    street_segment,
)

NIGHT = datetime(2026, 11, 25, 21, 30, tzinfo=UTC)  # 'evening' 70 %
DAY = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # noon local; sunset 15:29 UTC


def site_of(ids: list[str]) -> LightingSite:
    seg = street_segment()
    lums = [Luminaire(lid, "s1", "st", i, 40.0, 0.5) for i, lid in enumerate(ids)]
    return LightingSite(
        index=build_index([seg], lums),
        programs=PROGRAMS,
        co2_g_per_kwh=380.0,
    )


def kinds(service_alarms: Mapping[tuple[str, str, str], object], lid: str) -> set[str]:
    return {k[1] for k in service_alarms if k[0] == lid}


@pytest.mark.slow
async def test_each_failure_kind_at_night_is_raised_once_and_cleared(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(NIGHT, speed=120)
    # 'ghost' is configured but has no node: it never reports
    site = site_of(["ok", "lamp", "big", "small", "ghost"])
    now = clock.now()
    nodes = [
        NodeLogic("ok", now, LuminaireSpec(40.0, 0.5)),
        NodeLogic("lamp", now, LuminaireSpec(40.0, 0.5)),
        NodeLogic("big", now, LuminaireSpec(80.0, 0.5)),  # a wrong lamp: twice the power
        NodeLogic("small", now, LuminaireSpec(15.0, 0.5)),  # a wrong lamp: far too little
    ]
    nodes[1].faults.lamp_failure = True
    config = LightingServiceConfig(
        prefix=prefix,
        thresholds=FailureThresholds(comm_timeout_s=300.0),
        watch_uplinks=False,
    )
    rec = Recorder()
    async with (
        running_fleet(mqtt_broker, f"fleet-{unique}", clock, nodes, prefix) as fleet,
        running_service(mqtt_broker, f"svc-{unique}", clock, site, config, rec) as svc,
    ):
        want = {
            "lamp": {"lamp_failure", "node_reported"},
            "big": {"power_too_high"},
            "small": {"power_too_low"},
            "ghost": {"communication_lost"},
        }
        await eventually(
            lambda: (
                all(kinds(svc.alarms.active, lid) == k for lid, k in want.items())
                and svc.node_states.get("ok") is not None
                and svc.node_states["ok"].level_pct == 70.0
            )
        )
        assert kinds(svc.alarms.active, "ok") == set()
        lamp = [a for a in svc.alarms.for_luminaire("lamp") if a.kind is FailureKind.LAMP_FAILURE]
        assert lamp[0].luminaire_id == "lamp"
        assert NIGHT <= lamp[0].at <= clock.now()
        assert "0 W at level" in lamp[0].detail
        # two more reports (60 s apart) do not raise again
        reports = svc.stats.state_reports
        await eventually(lambda: svc.stats.state_reports >= reports + 8)
        raised = [c for c in rec.changes if c.change is Change.RAISED]
        keys = [
            (c.alarm.luminaire_id, c.alarm.kind.value, c.alarm.detail)
            for c in raised
            if c.alarm.kind is not FailureKind.COMMUNICATION_LOST
        ]
        assert len(keys) == len(set(keys))
        ghost = [c for c in raised if c.alarm.luminaire_id == "ghost"]
        assert len(ghost) == 1
        assert "no report yet" in ghost[0].alarm.detail

        # the lamp is replaced: its alarms clear with the next report
        fleet.nodes["lamp"].faults.lamp_failure = False
        await eventually(lambda: kinds(svc.alarms.active, "lamp") == set())
        cleared = {
            c.alarm.kind
            for c in rec.changes
            if c.change is Change.CLEARED and c.alarm.luminaire_id == "lamp"
        }
        assert cleared == {FailureKind.LAMP_FAILURE, FailureKind.NODE_REPORTED}
        # a node that goes offline (its fleet stops) loses communication at once
        await fleet.stop()
        await eventually(lambda: "communication_lost" in kinds(svc.alarms.active, "ok"))


async def test_a_lamp_on_by_day_is_found_by_its_power(mqtt_broker: object, unique: str) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(DAY, speed=120)
    site = site_of(["ok", "stuck"])
    now = clock.now()
    nodes = [NodeLogic("ok", now), NodeLogic("stuck", now)]
    nodes[1].faults.stuck_on = True  # a welded relay: full power whatever the level says
    config = LightingServiceConfig(prefix=prefix, watch_uplinks=False)
    async with (
        running_fleet(mqtt_broker, f"fleet-{unique}", clock, nodes, prefix),
        running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc,
    ):
        assert svc.decisions["stuck"].level_pct == 0.0
        assert "off by day" in svc.decisions["stuck"].reason_text
        # the nodes boot at their fallback (100 %, on by day) until the service's 0 % arrives
        await eventually(
            lambda: (
                svc.node_states.get("ok") is not None
                and svc.node_states["ok"].level_pct == 0.0
                and svc.node_states.get("stuck") is not None
                and svc.node_states["stuck"].level_pct == 0.0
            )
        )
        # reports are checked by the next cycle
        await eventually(
            lambda: kinds(svc.alarms.active, "stuck") == {"on_by_day", "power_too_high"}
        )
        assert kinds(svc.alarms.active, "ok") == set()
        day = [a for a in svc.alarms.for_luminaire("stuck") if a.kind is FailureKind.ON_BY_DAY]
        assert "by day" in day[0].detail
        assert day[0].at < clock.now() + timedelta(seconds=1)
