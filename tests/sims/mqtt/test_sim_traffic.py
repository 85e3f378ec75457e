"""The simulated traffic sensor: its daily curve, and its uplinks through a real broker into
the LoRaWAN decoders (ChirpStack v4 and The Things Stack v3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from kernel.clock import ManualClock
from kernel.readings import Reading
from protocols.lorawan import (
    Uplink,
    chirpstack_filter,
    parse_chirpstack,
    parse_tts,
    subscribe_uplinks,
)
from protocols.lorawan.codecs import TrafficCount, encode_traffic
from protocols.lorawan.tts import tts_filter
from protocols.mqtt import Backoff, Bus, BusConfig
from sims.traffic import (
    SensorIdentity,
    TrafficProfile,
    TrafficSensor,
    chirpstack_event,
    tts_message,
)

BERLIN = ZoneInfo("Europe/Berlin")
TUESDAY = datetime(2026, 11, 24, tzinfo=BERLIN)


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("low_h", "high_h"),
    [(3, 7.5), (3, 17), (23, 12), (1, 19)],
)
def test_traffic_is_low_at_night_and_high_at_the_peaks(low_h: float, high_h: float) -> None:
    p = TrafficProfile()

    def rate(h: float) -> float:
        return p.rate_per_h(TUESDAY + timedelta(hours=h))

    assert rate(low_h) * 5 < rate(high_h)


def test_weekends_are_quieter() -> None:
    p = TrafficProfile()
    saturday = datetime(2026, 11, 28, 17, tzinfo=BERLIN)
    assert p.rate_per_h(saturday) < p.rate_per_h(TUESDAY + timedelta(hours=17))


def test_daily_counts_scatter_around_the_curve() -> None:
    ident = SensorIdentity("0102030405060708", "t")
    sensor = TrafficSensor(None, ManualClock(TUESDAY), ident, seed=3)  # type: ignore[arg-type]
    starts = [TUESDAY + timedelta(minutes=10 * i) for i in range(144)]
    expected = np.array([sensor.expected_count(s) for s in starts])
    rng = np.random.default_rng(5)
    counts = rng.poisson(expected)
    assert abs(counts.sum() - expected.sum()) < 4 * np.sqrt(expected.sum())
    assert counts[:24].mean() < counts[42:48].mean()  # 00:00-04:00 vs 07:00-08:00


@pytest.mark.parametrize("network", ["chirpstack", "tts"])
def test_built_uplinks_parse_back(network: str) -> None:
    ident = SensorIdentity("A1B2C3D4E5F60708", "ring-1")
    frame = encode_traffic(TrafficCount(17, 600, 80))
    at = datetime(2026, 11, 24, 17, tzinfo=UTC)
    if network == "chirpstack":
        uplink = parse_chirpstack(chirpstack_event(ident, 10, 0, frame, at))
    else:
        uplink = parse_tts(tts_message(ident, 10, 0, frame, at))
    assert (uplink.dev_eui, uplink.f_port, uplink.f_cnt, uplink.payload) == (
        "a1b2c3d4e5f60708",
        10,
        0,
        frame,
    )
    assert uplink.received_at == at


@pytest.mark.parametrize("network", ["chirpstack", "tts"])
async def test_sensor_publishes_every_ten_minutes_into_readings(
    mqtt_broker: object, unique: str, network: str
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    app = f"app-{unique}"
    ident = SensorIdentity("00000000000000" + unique[:2], f"traffic-{unique}", application_id=app)
    got: list[tuple[list[Reading], Uplink]] = []

    async def sink(readings: list[Reading], uplink: Uplink) -> None:
        got.append((readings, uplink))

    def bus_cfg(name: str) -> BusConfig:
        return BusConfig(
            client_id=f"{name}-{unique}",
            host=mqtt_broker.host,  # type: ignore[attr-defined]
            port=mqtt_broker.port,  # type: ignore[attr-defined]
            backoff=Backoff(initial_s=0.05, cap_s=0.5),
        )

    topic_filter = (
        chirpstack_filter(app) if network == "chirpstack" else tts_filter(app, "waldstadt")
    )
    async with Bus(bus_cfg("ns")) as ns_bus, Bus(bus_cfg("ingest")) as ingest:
        await subscribe_uplinks(ingest, sink, network=network, topic_filter=topic_filter)  # type: ignore[arg-type]
        await ingest.wait_connected()
        sensor = TrafficSensor(ns_bus, clock, ident, network=network, seed=1)  # type: ignore[arg-type]
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(sensor.run(), name="traffic-sensor")
            for n in range(1, 4):
                await asyncio.sleep(0.05)  # let the sensor reach its sleep
                clock.advance(600)
                await eventually(lambda n=n: len(got) == n)  # type: ignore[misc]
            task.cancel()
    counts = [
        next(r.value for r in readings if r.channel == "vehicle_count") for readings, _ in got
    ]
    assert counts == [float(c.vehicle_count) for c in sensor.sent]
    assert [u.f_cnt for _, u in got] == [0, 1, 2]  # fCnt 0 omitted on the wire, read as 0
    times = [u.received_at for _, u in got]
    assert times[1] - times[0] == timedelta(minutes=10)
    assert all(u.dev_eui == ident.dev_eui for _, u in got)


async def test_presence_events_come_one_per_vehicle(mqtt_broker: object, unique: str) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    app = f"app-{unique}"
    ident = SensorIdentity("00000000000000" + unique[:2], f"presence-{unique}", application_id=app)
    by_port: dict[int, list[list[Reading]]] = {10: [], 11: []}

    async def sink(readings: list[Reading], uplink: Uplink) -> None:
        by_port[uplink.f_port].append(readings)

    def bus_cfg(name: str) -> BusConfig:
        return BusConfig(
            client_id=f"{name}-{unique}",
            host=mqtt_broker.host,  # type: ignore[attr-defined]
            port=mqtt_broker.port,  # type: ignore[attr-defined]
        )

    async with Bus(bus_cfg("ns")) as ns_bus, Bus(bus_cfg("ingest")) as ingest:
        await subscribe_uplinks(ingest, sink, topic_filter=chirpstack_filter(app))
        await ingest.wait_connected()
        sensor = TrafficSensor(ns_bus, clock, ident, presence=True, seed=4)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(sensor.run(), name="presence-sensor")
            for _ in range(40):  # walk through the window in 15 s steps
                await asyncio.sleep(0.01)
                clock.advance(15)
            await eventually(lambda: len(by_port[10]) == 1)
            task.cancel()
    vehicles = sensor.sent[0].vehicle_count
    assert vehicles > 0
    await eventually(lambda: len(by_port[11]) == vehicles)
    first = {r.channel: r.value for r in by_port[11][0]}
    assert first["presence_count"] == 1.0
    assert 5 <= first["speed_kmh"] <= 120  # type: ignore[operator]
