"""Telemetry → plausibility → store → metering, through a real broker, on SQLite and PostgreSQL.

Attacks and faults bill nothing (a spoofed jump, a counter that falls, a year-9999 instant, an
unknown device) and are quarantined, counted and alarmed once each; a recorded meter exchange
and a wrap at the register's top are billed exactly. 1,000 malformed messages among 10,000
good ones: the 10,000 readings are stored, the 1,000 counted by reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kernel.clock import ManualClock
from kernel.readings import Quality
from protocols.mqtt import Backoff, Bus, BusConfig
from protocols.mqtt.telemetry import encode_telemetry, telemetry_topic
from scheduler.ingest import TelemetryIngest, ingest_writer
from scheduler.metering_job import IMPORT_CHANNEL, MeteringJob
from scheduler.observability import Metrics
from scheduler.plausibility import ReadingGate
from scheduler.site import Site, site_from_data
from store import Store
from store.errors import StoreUnavailable

NOW = datetime(2026, 6, 10, 9, 0, 30, tzinfo=UTC)
T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
EXCHANGE_AT = T0 + timedelta(minutes=37, seconds=30)
TOP = 2**32  # the acc32 register of a SunSpec 203 meter


def site() -> Site:
    def meter(name: str, driver: str, unit: int, **kw: Any) -> dict[str, Any]:
        return {"name": name, "driver": driver, "host": "127.0.0.1", "unit_id": unit, **kw}

    exchange = {
        "at": EXCHANGE_AT.isoformat(),
        "old_final_wh": {IMPORT_CHANNEL: 1_003_750, "export_energy_wh": 0},
        "new_initial_wh": {IMPORT_CHANNEL: 0, "export_energy_wh": 0},
    }
    return site_from_data(
        {
            "site": {"name": "Teststadt", "latitude": 51.37, "longitude": 7.70},
            "devices": [
                meter("h01-meter", "eastron_sdm630", 1),
                meter("h02-meter", "sunspec_meter_203", 2),
                meter("h03-meter", "eastron_sdm630", 3, exchanges=[exchange]),
                *(meter(f"m{k}", "eastron_sdm630", 10 + k) for k in range(10)),
            ],
            "members": [
                *(
                    {"id": m, "name": m.upper(), "meter": f"{m}-meter"}
                    for m in ("h01", "h02", "h03")
                ),
                *({"id": f"x{k}", "name": f"X{k}", "meter": f"m{k}"} for k in range(10)),
            ],
        }
    )


def cfg(broker: Any, name: str, **kw: Any) -> BusConfig:
    return BusConfig(
        client_id=name,
        host=broker.host,
        port=broker.port,
        backoff=Backoff(initial_s=0.05, cap_s=0.5),
        **kw,
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


def counter_stream(prefix: str) -> list[tuple[str, bytes]]:
    """Every member's import counter once a minute, 08:00 … 09:00, 100 Wh a minute (6 kW),
    export 0; and the attacks and faults on h01."""
    out: list[tuple[str, bytes]] = []

    def send(device: str, ts: datetime, wh: float) -> None:
        body = encode_telemetry(ts, {IMPORT_CHANNEL: wh, "export_energy_wh": 0.0})
        out.append((telemetry_topic(device, prefix), body))

    for k in range(61):
        t = T0 + k * MIN
        send("h01-meter", t, 1_000_000 + 100 * k)
        send("h02-meter", t, (TOP - 3_000 + 100 * k) % TOP)
        old = t <= EXCHANGE_AT
        send("h03-meter", t, 1_000_000 + 100 * k if old else 100 * k - 3_750)
        if k == 20:  # the spoofed message of the issue: +3,003.87 kWh
            send("h01-meter", t + MIN / 2, 1_000_000 + 100 * k + 3_003_870)
        if k == 40:  # a lower reading: no exchange recorded, no wrap
            send("h01-meter", t + MIN / 2, 1_000_000 + 100 * k - 500)
        if k == 50:
            send("h01-meter", datetime(9999, 12, 31, tzinfo=UTC), 1_000_000 + 100 * k)
            send("ghost-meter", t, 5_000_000)
    return out


async def test_attacks_bill_nothing_an_exchange_and_a_wrap_bill_exactly(
    store_url: str, mqtt_broker: Any, unique: str
) -> None:
    clock = ManualClock(NOW)
    metrics = Metrics()
    async with (
        Store(store_url) as store,
        ingest_writer(store, clock.now) as writer,
        Bus(cfg(mqtt_broker, f"ingest-{unique}", manual_ack=True)) as bus,
        Bus(cfg(mqtt_broker, f"pub-{unique}")) as pub,
    ):
        gate = ReadingGate(store, clock, metrics, site())
        metrics.count_rejections(bus.malformed)
        ingest = TelemetryIngest(bus, writer, gate=gate, prefix=unique)
        await ingest.start()
        await bus.wait_connected()
        stream = counter_stream(unique)
        for topic, payload in stream:
            await pub.publish(topic, payload)
        await pub.flush(60)
        await eventually(lambda: ingest.messages == len(stream))
        await ingest.drain()
        await MeteringJob(store, site()).close_quarter_hours(NOW)
        billed = {
            m: [
                (iv.interval.energy_wh, iv.interval.quality)
                for iv in await store.intervals.for_member(m, T0, NOW, IMPORT_CHANNEL)
            ]
            for m in ("h01", "h02", "h03")
        }
        quarantine = Counter(s.reading.reason for s in await store.quarantine.recent())
        alarms = sorted(a.alarm_key for a in await store.alarms.active())
    # 100 Wh a minute, 1,500 Wh a quarter-hour, whatever was injected, exchanged or wrapped
    for member in ("h01", "h02", "h03"):
        assert billed[member] == [(1500, Quality.GOOD)] * 4, member
    assert quarantine == {
        "power_above_rating": 1,
        "counter_decrease": 1,
        "ts_out_of_window": 2,  # a message with import and export
        "unknown_device": 2,
    }
    assert alarms == [
        "plausibility:ghost-meter:unknown_device",
        "plausibility:h01-meter:counter_decrease",
        "plausibility:h01-meter:power_above_rating",
        "plausibility:h01-meter:ts_out_of_window",
    ]
    for reason, n in quarantine.items():
        sample = {"source": "mqtt", "reason": reason}
        assert metrics.registry.get_sample_value(
            "waldstadt_readings_quarantined_total", sample
        ) == float(n)


KINDS = [
    "invalid_json",
    "invalid_payload",  # a boolean
    "invalid_payload",  # a string
    "too_many_readings",
    "too_large",
    "unknown_device",
    "ts_out_of_window",
    "negative_counter",
    "power_above_rating",
    "counter_decrease",
]


def malformed(kind: str, t: datetime, wh: float, *, boolean: bool) -> bytes:
    """One malformed message of ``kind`` about a meter whose counter is at ``wh`` at ``t``."""
    half = t + timedelta(seconds=0.5)
    ts_text = '"ts": "2026-06-10T08:50:00Z"'
    if kind == "invalid_json":
        return b'{"ts": '
    if kind == "invalid_payload":
        value = "true" if boolean else '"12.5"'
        return f'{{{ts_text}, "values": {{"power_w": {value}}}}}'.encode()
    if kind == "too_many_readings":
        values = {f"c{n}_w": 1.0 for n in range(300)}
        return json.dumps({"ts": "2026-06-10T08:50:00Z", "values": values}).encode()
    if kind == "too_large":
        return f'{{{ts_text}, "pad": "{"x" * 70_000}", "values": {{}}}}'.encode()
    at, value = {
        "unknown_device": (t, wh),
        "ts_out_of_window": (datetime(9999, 12, 31, tzinfo=UTC), wh),
        "negative_counter": (half, -5_000.0),
        "power_above_rating": (half, wh + 3_003_870),
        "counter_decrease": (half, wh - 500),
    }[kind]
    return encode_telemetry(at, {IMPORT_CHANNEL: value})


def mixed_stream(prefix: str) -> list[tuple[str, bytes]]:
    """10 meters × 1,000 readings (5 Wh a second), and 100 malformed messages of each kind
    in ``KINDS`` mixed in: 11,000 messages."""
    out: list[tuple[str, bytes]] = []
    start = NOW - timedelta(seconds=1_000)
    for i in range(1_000):
        for k in range(10):
            device, t, wh = f"m{k}", start + timedelta(seconds=i), 500_000.0 + 5 * i
            topic = telemetry_topic(device, prefix)
            out.append((topic, encode_telemetry(t, {IMPORT_CHANNEL: wh})))
            if k != i % 10:
                continue
            kind = KINDS[(i // 10) % 10]
            bad = malformed(kind, t, wh, boolean=(i // 100) % 2 == 0)
            target = telemetry_topic("ghost", prefix) if kind == "unknown_device" else topic
            out.append((target, bad))
    return out


async def test_1000_malformed_among_10000_good_messages(
    store_url: str, mqtt_broker: Any, unique: str
) -> None:
    clock = ManualClock(NOW)
    metrics = Metrics()
    stream = mixed_stream(unique)
    assert len(stream) == 11_000
    async with (
        Store(store_url) as store,
        ingest_writer(store, clock.now) as writer,
        Bus(cfg(mqtt_broker, f"ingest-{unique}", manual_ack=True)) as bus,
        Bus(cfg(mqtt_broker, f"pub-{unique}")) as pub,
    ):
        gate = ReadingGate(store, clock, metrics, site())
        metrics.count_rejections(bus.malformed)
        ingest = TelemetryIngest(bus, writer, gate=gate, prefix=unique)
        await ingest.start()
        await bus.wait_connected()
        t0 = time.perf_counter()
        # in chunks the broker's queue holds (Mosquitto's max_queued_messages is 1,000)
        for start in range(0, len(stream), 500):
            chunk = stream[start : start + 500]
            for topic, payload in chunk:
                await pub.publish(topic, payload)
            sent = start + len(chunk)
            await eventually(lambda sent=sent: ingest.messages + bus.malformed.total >= sent)  # type: ignore[misc]
        await ingest.drain()
        elapsed = time.perf_counter() - t0
        stored = await store.readings.count()
        quarantined = await store.quarantine.counts()
    rejected = bus.stats.malformed
    by_reason = Counter(rejected) + Counter(quarantined)
    print(  # the figures for the report (pytest -s)
        f"\n{len(stream)} messages in {elapsed:.1f} s ({len(stream) / elapsed:.0f}/s): "
        f"{stored} readings stored; rejected {dict(rejected)}; quarantined {quarantined}"
    )
    assert stored == 10_000
    assert by_reason == Counter(KINDS * 100)
    assert sum(by_reason.values()) == 1_000
    assert ingest.committed == ingest.messages
    for reason, n in rejected.items():
        sample = {"source": "mqtt", "reason": reason}
        got = metrics.registry.get_sample_value("waldstadt_messages_rejected_total", sample)
        assert got == float(n)


async def test_a_message_waits_while_the_database_cannot_be_read(
    store_url: str, mqtt_broker: Any, unique: str, monkeypatch: Any
) -> None:
    """The check needs the counter's last value; while the database is away the message is
    held (not acknowledged, not admitted unchecked) and checked again."""
    clock = ManualClock(NOW)
    async with (
        Store(store_url) as store,
        ingest_writer(store, clock.now) as writer,
        Bus(cfg(mqtt_broker, f"ingest-{unique}", manual_ack=True)) as bus,
        Bus(cfg(mqtt_broker, f"pub-{unique}")) as pub,
    ):
        latest = store.readings.latest
        failures = [StoreUnavailable(store_url, "connection refused")] * 2

        async def flaky(*args: Any, **kw: Any) -> Any:
            if failures:
                raise failures.pop()
            return await latest(*args, **kw)

        monkeypatch.setattr(store.readings, "latest", flaky)
        ingest = TelemetryIngest(
            bus, writer, gate=ReadingGate(store, clock, Metrics(), site()), prefix=unique
        )
        await ingest.start()
        await bus.wait_connected()
        payload = encode_telemetry(NOW - MIN, {IMPORT_CHANNEL: 1_000.0})
        await pub.publish_confirmed(telemetry_topic("h01-meter", unique), payload)
        await eventually(lambda: ingest.committed == 1, 30)
        assert ingest.retries == 2
        assert await store.readings.count("h01-meter") == 1
