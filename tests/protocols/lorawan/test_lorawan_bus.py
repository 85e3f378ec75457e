"""Uplinks through a real broker: bad ones are counted with the field, good ones go on."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

from kernel.readings import Reading
from protocols.lorawan import (
    TrafficCount,
    Uplink,
    chirpstack_filter,
    encode_traffic,
    subscribe_uplinks,
)
from protocols.mqtt import Backoff, Bus, BusConfig
from sims.traffic import SensorIdentity, chirpstack_event

AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


async def test_bad_uplinks_are_counted_and_good_ones_arrive(
    mqtt_broker: object, unique: str
) -> None:
    app = f"app-{unique}"
    ident = SensorIdentity("0011223344556677", "t1", application_id=app)
    topic = f"application/{app}/device/{ident.dev_eui}/event/up"
    good = [
        chirpstack_event(ident, 10, n, encode_traffic(TrafficCount(n, 600, 90)), AT)
        for n in range(5)
    ]
    short = chirpstack_event(ident, 10, 9, b"\x01\x00", AT)
    no_eui = json.loads(chirpstack_event(ident, 10, 9, encode_traffic(TrafficCount(1)), AT))
    del no_eui["deviceInfo"]["devEui"]
    bad_b64 = json.loads(good[0])
    bad_b64["data"] = "@@@"
    stream = [good[0], short, good[1], json.dumps(no_eui).encode(), good[2],
              json.dumps(bad_b64).encode(), good[3], b"not json", good[4]]  # fmt: skip
    got: list[list[Reading]] = []

    async def sink(readings: list[Reading], uplink: Uplink) -> None:
        got.append(readings)

    def cfg(name: str) -> BusConfig:
        return BusConfig(
            client_id=f"{name}-{unique}",
            host=mqtt_broker.host,  # type: ignore[attr-defined]
            port=mqtt_broker.port,  # type: ignore[attr-defined]
            backoff=Backoff(initial_s=0.05, cap_s=0.5),
        )

    async with Bus(cfg("ingest")) as ingest, Bus(cfg("ns")) as ns:
        await subscribe_uplinks(ingest, sink, topic_filter=chirpstack_filter(app))
        await ingest.wait_connected()
        for payload in stream:
            await ns.publish(topic, payload)
        await eventually(lambda: len(got) == 5 and ingest.malformed.total == 4)
    counts = [next(r.value for r in rs if r.channel == "vehicle_count") for rs in got]
    assert counts == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ingest.stats.malformed == {"undecodable": 2, "invalid_payload": 1, "invalid_json": 1}
    fields = {(rec.reason, rec.field) for rec in ingest.malformed.recent}
    assert fields == {
        ("undecodable", "data"),
        ("invalid_payload", "deviceInfo.devEui"),
        ("invalid_json", "$"),
    }
    assert base64.b64encode(b"\x01\x00").decode() in short.decode()
