"""Traffic counts through both LoRaWAN network servers reach the running service.

Two streets, each with a traffic counter: Ringstraße's counter is registered with ChirpStack,
Allee's with The Things Stack (``network: tts`` in the site file's lighting section). The
service runs as ``waldstadt run`` runs it (:class:`app.service.Service`) on a broker of the
test's own; the counters publish as their network servers would (``sims.traffic``); the
streets' nodes are simulated (``sims.streetlight``). Low counts on either network lower that
street's class and dim its lamps; a count for Ringstraße's counter arriving through The
Things Stack (not its network server) is counted and ignored.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.service import Service
from kernel.clock import SimClock
from protocols.mqtt import Bus, BusConfig
from scheduler.site import load_site_text
from sims.streetlight import LuminaireSpec, NodeLogic, StreetlightFleet
from sims.traffic import SensorIdentity, TrafficSensor
from tests.scheduler.test_service import settings_for

EVENING = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # 20:00 in Berlin: the 'evening' step
RING, ALLEE = "ring", "allee"
CS_EUI, TTS_EUI = "70b3d57ed0001c01", "70b3d57ed0001d01"

SITE = textwrap.dedent(
    f"""\
    site: {{name: Netztest, latitude: 51.37, longitude: 7.70}}
    dispatch: {{poll_interval_s: 30, revert_s: 120, read_timeout_s: 1}}
    lighting:
      programs:
        - name: Abend
          steps:
            - {{name: evening, anchor: clock, clock: "12:00", level_pct: 80, ramp_s: 2}}
      calendars:
        - {{name: default, default_program: Abend}}
      segments:
        - {{id: {RING}, latitude_deg: 51.37, longitude_deg: 7.70, design_class: M4,
           lower_classes: [M5, M6], design_level_pct: 80, driver_min_pct: 10,
           traffic: {{capacity_veh_per_h: 600, min_dwell_s: 60}}}}
        - {{id: {ALLEE}, latitude_deg: 51.37, longitude_deg: 7.70, design_class: M4,
           lower_classes: [M5, M6], design_level_pct: 80, driver_min_pct: 10,
           traffic: {{capacity_veh_per_h: 600, min_dwell_s: 60}}}}
      sensors:
        - {{id: {CS_EUI}, segment: {RING}, street: {RING}, pole: 2}}
        - {{id: {TTS_EUI}, segment: {ALLEE}, street: {ALLEE}, pole: 2, network: tts}}
      luminaires:
    """
) + "".join(
    f"    - {{id: {street}-{i}, segment: {street}, street: {street}, pole: {i},"
    f" rated_power_w: 40}}\n"
    for street in (RING, ALLEE)
    for i in range(4)
)


async def eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that the service's tasks change
            await asyncio.sleep(0.05)


def lowered(service: Service, street: str) -> bool:
    lighting = service.lighting
    assert lighting is not None
    return all(
        "class lowered to M6 by traffic 30 veh/h" in lighting.decisions[f"{street}-{i}"].reason_text
        for i in range(4)
    )


@pytest.mark.slow
async def test_tts_and_chirpstack_counts_both_change_a_streets_class(
    restartable_broker: Any, unique: str, tmp_path: Path
) -> None:
    site = load_site_text(SITE)
    assert site.lighting is not None
    assert site.lighting.site.networks == {"chirpstack", "tts"}
    clock = SimClock(EVENING, speed=60)
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", restartable_broker,
                            f"svc-{unique}")  # fmt: skip
    broker = BusConfig(client_id=f"ns-{unique}", host=restartable_broker.host,
                       port=restartable_broker.port)  # fmt: skip
    lamps = [f"{s}-{i}" for s in (RING, ALLEE) for i in range(4)]
    async with Bus(broker) as bus:
        await bus.wait_connected()
        nodes = [NodeLogic(lid, clock.now(), LuminaireSpec(40.0, 0.5)) for lid in lamps]
        fleet = StreetlightFleet(bus, clock, nodes, report_interval_s=60.0)
        await fleet.start()
        runner = asyncio.create_task(fleet.run(), name="fleet")
        chirpstack = TrafficSensor(bus, clock, SensorIdentity(CS_EUI, "ring-counter"))
        tts = TrafficSensor(bus, clock, SensorIdentity(TTS_EUI, "allee-counter"), network="tts")
        try:
            async with Service(settings, site, clock) as service:
                lighting = service.lighting
                assert lighting is not None
                await eventually(lambda: all(n.target_pct == 80.0 for n in fleet.nodes.values()))
                assert "no traffic data yet" in lighting.decisions["allee-0"].reason_text
                # 5 vehicles in 10 minutes = 30 veh/h: two classes lower after two samples
                for sensor in (chirpstack, tts):
                    await sensor.publish_count(5, clock.now())
                await eventually(lambda: lighting.stats.traffic_samples == 2)
                await clock.sleep(90)  # past the dwell time
                for sensor in (chirpstack, tts):
                    await sensor.publish_count(5, clock.now())
                await eventually(lambda: lowered(service, RING) and lowered(service, ALLEE))
                dimmed = lighting.decisions["allee-0"].level_pct
                assert dimmed < 80.0
                await eventually(lambda: all(n.target_pct == dimmed
                                             for n in fleet.nodes.values()))  # fmt: skip
                # Ringstraße's counter through the other network server: not its data
                wrong = TrafficSensor(bus, clock, SensorIdentity(CS_EUI, "ring-counter"),
                                      network="tts")  # fmt: skip
                await wrong.publish_count(600, clock.now())
                await eventually(lambda: lighting.stats.wrong_network == 1)
                assert lighting.stats.traffic_samples == 4
                await service.wait_for_cycle(timeout_s=10)
                assert lowered(service, RING)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
