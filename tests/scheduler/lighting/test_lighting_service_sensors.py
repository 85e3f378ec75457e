"""Sensors end to end over a real broker: traffic counts lower the class (a silent sensor
returns the segment to its design class), a presence event boosts its corridor at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.clock import SimClock
from lighting.presence import PresenceRule
from lighting.site import Sensor
from lighting.traffic import TrafficRule
from protocols.lorawan import PRESENCE_FPORT, TRAFFIC_FPORT, PresenceEvent, TrafficCount
from protocols.lorawan.chirpstack import chirpstack_filter
from protocols.lorawan.codecs import encode_presence, encode_traffic
from protocols.lorawan.uplink import Uplink
from protocols.mqtt import Bus
from protocols.streetlight import LightCommand
from scheduler.lighting import LightingServiceConfig
from scheduler.lighting.uplinks import presence_detection, sensor_of, traffic_sample
from sims.traffic import SensorIdentity, TrafficSensor, chirpstack_event, uplink_topic
from tests.scheduler.lighting.harness import (
    bus_config,
    eventually,
    nodes_for,
    running_fleet,
    running_service,
    street_segment,
    street_site,
)

EVENING = datetime(2026, 11, 25, 21, 5, tzinfo=UTC)  # 'evening' 70 % until 23:17 UTC
AFTER_MIDNIGHT = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 'after midnight' 30 %
EUI = "70b3d57ed0000a01"


def uplink(f_port: int, payload: bytes, name: str = "ts-1", eui: str = EUI) -> Uplink:
    return Uplink("chirpstack", eui, name, "app", f_port, 1, payload, EVENING)


@pytest.mark.parametrize(
    ("frame", "rule_window_s", "count"),
    [
        (TrafficCount(5, 600, 90), 600.0, 5),  # the 10-minute count as it is
        (TrafficCount(5, 300, 90), 600.0, 10),  # a 5-minute count, scaled to the rule
        (TrafficCount(5, 600, 90, sensor_fault=True), 600.0, None),  # broken → no count
        (TrafficCount(0, 600, 90, sensor_fault=False), 600.0, 0),
    ],
)
def test_traffic_uplink_to_sample(
    frame: TrafficCount, rule_window_s: float, count: int | None
) -> None:
    seg = street_segment(traffic=TrafficRule("s1", 600.0, window_s=rule_window_s))
    site = street_site(4, segment=seg, sensors=[Sensor("ts-1", "s1", "st", 2)])
    up = uplink(TRAFFIC_FPORT, encode_traffic(frame))
    sensor = sensor_of(site.index, up)
    assert sensor is not None
    got = traffic_sample(site.index, sensor, up)
    assert got is not None
    assert (got.segment_id, got.sample.count, got.sample.at) == ("s1", count, EVENING)
    assert presence_detection(site.index, sensor, up) is None


@pytest.mark.parametrize(
    ("sensor_id", "name", "eui", "found"),
    [
        ("ts-1", "ts-1", EUI, True),  # by device name
        (EUI, "other", EUI, True),  # by DevEUI
        (EUI.upper(), "other", EUI, True),  # by DevEUI configured in capitals
        ("ts-2", "ts-1", EUI, False),  # not a sensor of this site
    ],
)
def test_sensor_lookup(sensor_id: str, name: str, eui: str, found: bool) -> None:
    site = street_site(4, sensors=[Sensor(sensor_id, "s1", "st", 2)])
    up = uplink(PRESENCE_FPORT, encode_presence(PresenceEvent(1, 30)), name, eui)
    sensor = sensor_of(site.index, up)
    assert (sensor is not None) == found
    if sensor is not None:
        det = presence_detection(site.index, sensor, up)
        assert det is not None
        assert (det.street_id, det.pole_index, det.at, det.direction) == ("st", 2, EVENING, 0)


@pytest.mark.slow
async def test_traffic_lowers_the_class_and_a_silent_sensor_restores_it(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(EVENING, speed=200)
    rule = TrafficRule("s1", 600.0, min_dwell_s=300.0, max_silence_s=900.0)
    ident = SensorIdentity(EUI, f"ts-{unique}", application_id=f"{unique}-traffic")
    site = street_site(
        3,
        segment=street_segment(traffic=rule),
        sensors=[Sensor(ident.device_name, "s1", "st", 1)],
    )
    config = LightingServiceConfig(
        prefix=prefix, uplink_filters={"chirpstack": chirpstack_filter(ident.application_id)}
    )
    async with (
        running_fleet(
            mqtt_broker, f"fleet-{unique}", clock, nodes_for(site, clock), prefix
        ) as fleet,
        running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc,
        Bus(bus_config(mqtt_broker, f"ns-{unique}")) as ns_bus,
    ):
        await ns_bus.wait_connected()
        sensor = TrafficSensor(ns_bus, clock, ident)
        assert "no traffic data yet" in svc.decisions["l0"].reason_text
        # 5 vehicles in 10 minutes = 30 veh/h, under a quarter of 600 veh/h: two classes lower,
        # after two low samples and the dwell time
        await sensor.publish_count(5, clock.now())
        await eventually(lambda: svc.traffic["s1"].low_streak == 1)
        await sensor.publish_count(5, clock.now())
        await eventually(lambda: svc.decisions["l0"].level_pct < 70.0)
        lowered = svc.decisions["l0"]
        assert "class lowered to M6 by traffic 30 veh/h" in lowered.reason_text
        assert svc.traffic["s1"].since is not None
        assert 20.0 <= lowered.level_pct < 70.0
        await eventually(
            lambda: all(n.target_pct == lowered.level_pct for n in fleet.nodes.values())
        )
        # the sensor falls silent: after 900 s the segment is back at its design class
        await eventually(lambda: svc.decisions["l0"].level_pct == 70.0)
        assert "sensor silent → design class" in svc.decisions["l0"].reason_text
        await eventually(lambda: all(n.target_pct == 70.0 for n in fleet.nodes.values()))
        assert svc.stats.traffic_samples == 2


@pytest.mark.slow
async def test_a_presence_event_boosts_its_corridor_at_once(
    mqtt_broker: object, unique: str
) -> None:
    prefix = f"{unique}/lights"
    clock = SimClock(AFTER_MIDNIGHT, speed=60)
    presence = PresenceRule("s1", poles_ahead=3, poles_behind=1, boost_pct=80.0, hold_s=240.0)
    ident = SensorIdentity(EUI, f"ps-{unique}", application_id=f"{unique}-presence")
    site = street_site(
        12,
        segment=street_segment(presence=presence),
        sensors=[Sensor(ident.device_name, "s1", "st", 5)],
    )
    config = LightingServiceConfig(
        prefix=prefix, uplink_filters={"chirpstack": chirpstack_filter(ident.application_id)}
    )
    boosted: set[str] = set()

    async def capture(inbound: object) -> None:
        cmd: LightCommand = inbound.payload  # type: ignore[attr-defined]
        if cmd.command_id.startswith("presence-"):
            boosted.add(inbound.topic.split("/")[-2])  # type: ignore[attr-defined]

    async with (
        running_fleet(
            mqtt_broker, f"fleet-{unique}", clock, nodes_for(site, clock), prefix
        ) as fleet,
        Bus(bus_config(mqtt_broker, f"spy-{unique}")) as spy,
    ):
        await spy.wait_connected()
        await spy.subscribe(f"{prefix}/+/cmd", LightCommand, capture)
        async with running_service(mqtt_broker, f"svc-{unique}", clock, site, config) as svc:
            await eventually(lambda: all(n.target_pct == 30.0 for n in fleet.nodes.values()))
            applied = fleet.outcomes["applied"]
            frame = encode_presence(PresenceEvent(1, 38))
            event = chirpstack_event(ident, PRESENCE_FPORT, 1, frame, clock.now())
            await spy.publish(uplink_topic(ident, "chirpstack"), event)
            # direction unknown: 3 poles both ways around pole 5
            corridor = {f"l{i}" for i in range(2, 9)}
            await eventually(lambda: boosted == corridor)
            await eventually(lambda: fleet.outcomes["applied"] >= applied + len(corridor))
            assert svc.stats.detections == 1
            assert "presence boost 80 %" in svc.decisions["l5"].reason_text
            assert svc.decisions["l9"].level_pct == 30.0
            # the nodes outside the corridor were never boosted
            assert all(fleet.nodes[f"l{i}"].target_pct == 30.0 for i in (0, 1, 9, 10, 11))
            # after the hold the tick brings everyone back to the program level
            await eventually(lambda: all(n.target_pct == 30.0 for n in fleet.nodes.values()))
            await eventually(lambda: "presence" not in svc.decisions["l5"].reason_text)
            assert clock.now() >= AFTER_MIDNIGHT + timedelta(seconds=240)
