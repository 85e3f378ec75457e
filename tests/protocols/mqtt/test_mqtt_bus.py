"""The bus against a real broker: delivery, malformed payloads, manual ack, last will, health."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from kernel.errors import BrokerUnavailable, ConfigError
from kernel.readings import Quality, Reading
from protocols.mqtt import (
    Backoff,
    Bus,
    BusConfig,
    HealthState,
    Inbound,
    TelemetryPayload,
    encode_telemetry,
    subscribe_telemetry,
    telemetry_topic,
)

T0 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def config(broker: object, client_id: str, **kw: object) -> BusConfig:
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


class Collector:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.messages = 0

    async def __call__(self, readings: list[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        self.readings.extend(readings)
        self.messages += 1


async def test_telemetry_arrives_as_readings(mqtt_broker: object, unique: str) -> None:
    got = Collector()
    async with (
        Bus(config(mqtt_broker, f"sub-{unique}")) as sub,
        Bus(config(mqtt_broker, f"pub-{unique}")) as pub,
    ):
        await subscribe_telemetry(sub, got, prefix=unique)
        await sub.wait_connected()
        payload = encode_telemetry(
            T0, {"power_w": 1234.5, "import_energy_wh": 8e6, "soc_pct": None}
        )
        await pub.publish_confirmed(telemetry_topic("meter-1", unique), payload)
        await eventually(lambda: got.messages == 1)
    by_channel = {r.channel: r for r in got.readings}
    assert by_channel["power_w"] == Reading("meter-1", "power_w", 1234.5, "W", T0)
    assert by_channel["import_energy_wh"].unit == "Wh"
    assert by_channel["soc_pct"].quality is Quality.UNAVAILABLE
    assert by_channel["soc_pct"].value is None


def malformed_payloads() -> list[tuple[bytes, str]]:
    """(payload, expected reason) -- ten kinds, each ten times."""
    kinds = [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"values": {"power_w": 1}}', "invalid_payload"),  # ts missing
        (b'{"ts": "2026-11-25T17:00:00", "values": {}}', "invalid_payload"),  # naive
        (b'{"ts": "2026-11-25T17:00:00Z", "values": {"power_w": "high"}}', "invalid_payload"),
        (b'{"ts": "2026-11-25T17:00:00Z", "values": {"Power W": 1}}', "invalid_payload"),
        (b'{"ts": "2026-11-25T17:00:00Z", "values": [1, 2]}', "invalid_payload"),
        (b'{"ts": "2026-11-25T17:00:00Z", "values": {"power_w": 1e999}}', "invalid_payload"),
        (b"[]", "invalid_payload"),
    ]
    return [k for k in kinds for _ in range(10)]


async def test_malformed_payloads_are_counted_and_never_disturb_good_ones(
    mqtt_broker: object, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    got = Collector()
    bad = malformed_payloads()
    good = [
        (telemetry_topic(f"m{i % 7}", unique), encode_telemetry(T0, {"seq_count": float(i)}))
        for i in range(1000)
    ]
    stream = [*good]
    rng = random.Random(7)
    for payload, _reason in bad:
        stream.insert(rng.randrange(len(stream) + 1), (telemetry_topic("mx", unique), payload))
    async with (
        Bus(config(mqtt_broker, f"sub-{unique}")) as sub,
        Bus(config(mqtt_broker, f"pub-{unique}")) as pub,
    ):
        await subscribe_telemetry(sub, got, prefix=unique)
        await sub.wait_connected()
        for topic, payload in stream:
            await pub.publish(topic, payload)
        await pub.flush(60)
        await eventually(lambda: got.messages + sub.malformed.total >= 1100, 60)
        await asyncio.sleep(0.2)  # nothing more may arrive
    assert got.messages == 1000
    assert sorted(r.value for r in got.readings) == [float(i) for i in range(1000)]
    counts = sub.stats.malformed
    assert counts == {"invalid_json": 30, "invalid_payload": 70}
    fields = {rec.field for rec in sub.malformed.recent}
    assert {"ts", "$", "values.power_w"} <= fields
    warnings = [r for r in caplog.records if "dropped message" in r.getMessage()]
    # logged once per (filter, reason, field): far fewer lines than bad messages
    assert 3 <= len(warnings) <= 10
    assert any(f"{unique}/devices/mx/telemetry" in r.getMessage() for r in warnings)
    assert sub.health.state is HealthState.STOPPED


async def test_a_failing_handler_is_counted_and_the_stream_goes_on(
    mqtt_broker: object, unique: str
) -> None:
    seen: list[float] = []

    async def handler(inbound: Inbound[TelemetryPayload]) -> None:
        value = inbound.payload.values["x_w"]
        if value == 3:
            raise RuntimeError("bug in a handler")
        assert value is not None
        seen.append(value)

    async with (
        Bus(config(mqtt_broker, f"sub-{unique}")) as sub,
        Bus(config(mqtt_broker, f"pub-{unique}")) as pub,
    ):
        await sub.subscribe(f"{unique}/devices/+/telemetry", TelemetryPayload, handler)
        await sub.wait_connected()
        for i in range(6):
            await pub.publish(telemetry_topic("d", unique), encode_telemetry(T0, {"x_w": i}))
        await eventually(lambda: len(seen) == 5)
    assert seen == [0, 1, 2, 4, 5]
    assert sub.stats.malformed == {"handler_error": 1}


VICTIM = """
import asyncio, sys
from protocols.mqtt import Bus, BusConfig
async def main():
    cfg = BusConfig(client_id=sys.argv[1], host=sys.argv[2], port=int(sys.argv[3]),
                    availability_topic=sys.argv[4], keepalive_s=5)
    async with Bus(cfg) as bus:
        await bus.wait_connected()
        print("up", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_last_will_shows_offline_when_a_client_dies(mqtt_broker: object, unique: str) -> None:
    """The client process is killed (SIGKILL): no DISCONNECT, so the broker sends the will."""
    topic = f"{unique}/clients/victim/availability"
    states: list[bytes] = []

    async def on_availability(inbound: Inbound[bytes]) -> None:
        states.append(inbound.payload)

    async with Bus(config(mqtt_broker, f"watch-{unique}")) as watcher:
        await watcher.subscribe_raw(topic, on_availability)
        await watcher.wait_connected()
        victim = await asyncio.create_subprocess_exec(
            sys.executable, "-c", VICTIM, f"victim-{unique}",
            mqtt_broker.host, str(mqtt_broker.port), topic,  # type: ignore[attr-defined]
            stdout=asyncio.subprocess.PIPE, cwd=str(ROOT),
        )  # fmt: skip
        try:
            assert victim.stdout is not None
            async with asyncio.timeout(30):
                assert (await victim.stdout.readline()).strip() == b"up"
            await eventually(lambda: states == [b"online"])
        finally:
            victim.kill()
            await victim.wait()
        await eventually(lambda: states[-1:] == [b"offline"])
    assert states == [b"online", b"offline"]


async def test_graceful_exit_publishes_offline_retained(mqtt_broker: object, unique: str) -> None:
    topic = f"{unique}/clients/polite/availability"
    async with Bus(config(mqtt_broker, f"polite-{unique}", availability_topic=topic)) as bus:
        await bus.wait_connected()
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as probe:  # type: ignore[attr-defined]
        await probe.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            msg = await anext(aiter(probe.messages))
    assert msg.retain
    assert msg.payload == b"offline"


async def test_manual_ack_redelivers_what_was_not_acknowledged(
    mqtt_broker: object, unique: str
) -> None:
    """A consumer that dies before committing gets the messages again (F5)."""
    topic_filter = f"{unique}/devices/+/telemetry"
    first: list[Inbound[TelemetryPayload]] = []
    second: list[float | None] = []

    async def hold(inbound: Inbound[TelemetryPayload]) -> None:
        first.append(inbound)  # "commit" never happens for odd values
        if inbound.payload.values["n_w"] in (0.0, 2.0):
            inbound.ack()

    async def commit(inbound: Inbound[TelemetryPayload]) -> None:
        second.append(inbound.payload.values["n_w"])
        inbound.ack()

    cid = f"ingest-{unique}"
    async with Bus(config(mqtt_broker, f"pub-{unique}")) as pub:
        async with Bus(config(mqtt_broker, cid, manual_ack=True)) as ingest:
            await ingest.subscribe(topic_filter, TelemetryPayload, hold, ack="manual")
            await ingest.wait_connected()
            for n in range(4):
                await pub.publish(telemetry_topic("d", unique), encode_telemetry(T0, {"n_w": n}))
            await eventually(lambda: len(first) == 4)
        assert [i.acked for i in first] == [True, False, True, False]
        async with Bus(config(mqtt_broker, cid, manual_ack=True)) as ingest:
            await ingest.subscribe(topic_filter, TelemetryPayload, commit, ack="manual")
            await eventually(lambda: len(second) >= 2)
            await asyncio.sleep(0.3)
    assert sorted(v for v in second if v is not None) == [1.0, 3.0]


async def test_manual_ack_needs_manual_ack_mode(mqtt_broker: object, unique: str) -> None:
    async def handler(inbound: Inbound[TelemetryPayload]) -> None:
        return None

    bus = Bus(config(mqtt_broker, f"x-{unique}"))
    with pytest.raises(ConfigError, match="manual ack"):
        await bus.subscribe("a/+", TelemetryPayload, handler, ack="manual")


async def test_health_is_degraded_with_a_reason_when_no_broker_answers(unique: str) -> None:
    from tests.conftest import free_port

    cfg = BusConfig(
        client_id=f"lonely-{unique}", port=free_port(), backoff=Backoff(initial_s=0.05, cap_s=0.2)
    )
    async with Bus(cfg) as bus:
        await eventually(lambda: bus.health.state is HealthState.DEGRADED, 10)
        assert bus.health.reason
        await bus.publish("a/b", b"kept")
        assert bus.health.outbox == 1
        with pytest.raises(BrokerUnavailable, match="not connected"):
            await bus.wait_connected(timeout_s=0.3)


async def test_mqtt5_session_and_routing_of_overlapping_filters(
    mqtt_broker: object, unique: str
) -> None:
    if mqtt_broker.kind != "mosquitto":  # type: ignore[attr-defined]
        pytest.skip("amqtt speaks MQTT 3.1.1 only")
    a: list[str] = []
    b: list[str] = []

    async def into(box: list[str]) -> Callable[[Inbound[bytes]], Awaitable[None]]:
        async def handler(inbound: Inbound[bytes]) -> None:
            box.append(inbound.topic)

        return handler

    async with (
        Bus(config(mqtt_broker, f"v5-{unique}", protocol="5", manual_ack=True)) as sub,
        Bus(config(mqtt_broker, f"pub-{unique}", protocol="5")) as pub,
    ):
        await sub.subscribe_raw(f"{unique}/+/x", await into(a))
        await sub.subscribe_raw(f"{unique}/#", await into(b))
        await sub.wait_connected()
        await pub.publish(f"{unique}/1/x", b"1")
        await pub.publish(f"{unique}/2/y", b"2")
        await eventually(lambda: len(b) == 2)
    assert a == [f"{unique}/1/x"]
    assert b == [f"{unique}/1/x", f"{unique}/2/y"]


def test_payload_json_scheme_is_stable() -> None:
    body = json.loads(encode_telemetry(T0 + timedelta(hours=1), {"power_w": 5}))
    assert body == {"ts": "2026-11-25T18:00:00Z", "values": {"power_w": 5}}
