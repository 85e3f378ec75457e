"""LoRaWAN uplinks that cannot become readings are refused with a reason, counted and logged
once per reason as a warning — never dropped without a word (ChirpStack and TTS, real broker)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from kernel.readings import Reading
from protocols.lorawan import (
    TrafficCount,
    Uplink,
    chirpstack_filter,
    encode_traffic,
    parse_chirpstack,
    parse_tts,
    subscribe_uplinks,
    tts_filter,
    uplink_readings,
)
from protocols.mqtt import Backoff, Bus, BusConfig
from protocols.mqtt.inbound import MessageRefused
from sims.traffic import SensorIdentity, chirpstack_event, tts_message, uplink_topic

AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
FRAME = encode_traffic(TrafficCount(12, 600, 90))


def test_a_port_without_codec_or_decoded_payload_is_refused_naming_the_field() -> None:
    ident = SensorIdentity("0011223344556677", "t1")
    cs = parse_chirpstack(chirpstack_event(ident, 42, 1, FRAME, AT))
    with pytest.raises(MessageRefused) as info:
        uplink_readings(cs)
    assert (info.value.code, info.value.field) == ("unknown_fport", "fPort")
    assert "fPort 42" in info.value.reason
    tts = parse_tts(tts_message(ident, 42, 1, FRAME, AT))
    with pytest.raises(MessageRefused) as info:
        uplink_readings(tts)
    assert info.value.field == "uplink_message.f_port"


def test_a_tts_uplink_without_dev_eui_is_refused() -> None:
    msg = json.loads(tts_message(SensorIdentity("0011223344556677", "t1"), 10, 1, FRAME, AT))
    del msg["end_device_ids"]["dev_eui"]
    with pytest.raises(MessageRefused) as info:
        parse_tts(json.dumps(msg))
    assert (info.value.code, info.value.field) == ("no_dev_eui", "end_device_ids.dev_eui")
    assert "'t1'" in info.value.reason


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("network", ["chirpstack", "tts"])
async def test_refused_uplinks_are_counted_and_warned_once_per_reason(
    mqtt_broker: object, unique: str, network: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "protocols.mqtt.bus")
    ident = SensorIdentity("0011223344556677", "t1", application_id=f"app-{unique}")
    make = chirpstack_event if network == "chirpstack" else tts_message
    no_eui = json.loads(make(ident, 10, 1, FRAME, AT))
    if network == "tts":
        del no_eui["end_device_ids"]["dev_eui"]
    bad = [
        (make(ident, 42, 1, FRAME, AT), "unknown_fport"),
        (make(ident, 10, 2, b"\x01\x00", AT), "undecodable"),
    ]
    if network == "tts":
        bad.append((json.dumps(no_eui).encode(), "no_dev_eui"))
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

    topic_filter = (
        chirpstack_filter(ident.application_id)
        if network == "chirpstack"
        else tts_filter(ident.application_id, ident.tenant_id)
    )
    async with Bus(cfg("ingest")) as ingest, Bus(cfg("ns")) as ns:
        await subscribe_uplinks(ingest, sink, network=network, topic_filter=topic_filter)  # type: ignore[arg-type]
        await ingest.wait_connected()
        topic = uplink_topic(ident, network)  # type: ignore[arg-type]
        for _ in range(4):
            for payload, _reason in bad:
                await ns.publish(topic, payload)
            await ns.publish(topic, make(ident, 10, 3, FRAME, AT))
        await eventually(lambda: len(got) == 4 and ingest.malformed.total == 4 * len(bad))
    assert ingest.stats.malformed == {reason: 4 for _, reason in bad}
    lines = [r.getMessage() for r in caplog.records if "dropped message" in r.getMessage()]
    assert sorted(line.split("(")[1].split(")")[0] for line in lines) == sorted(
        reason for _, reason in bad
    )
