"""Strict telemetry through a real broker: no coercion, bounded messages, every refusal counted
with the field and logged once per reason."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from kernel.readings import Reading
from protocols.mqtt import Backoff, Bus, BusConfig, Inbound, TelemetryPayload
from protocols.mqtt.inbound import MalformedStats
from protocols.mqtt.telemetry import (
    TelemetryLimits,
    encode_telemetry,
    subscribe_telemetry,
    telemetry_topic,
)

T0 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
TS = '"ts": "2026-11-25T17:00:00Z"'

#: (payload, reason, field): what the audit of the issue stored, and more
REFUSED: list[tuple[bytes, str, str]] = [
    (f'{{{TS}, "values": {{"power_w": true}}}}'.encode(), "invalid_payload", "values.power_w"),
    (f'{{{TS}, "values": {{"power_w": "12.5"}}}}'.encode(), "invalid_payload", "values.power_w"),
    (f'{{{TS}, "values": {{"power_w": 1e308}}}}'.encode(), "invalid_payload", "values.power_w"),
    (f'{{{TS}, "values": {{"power_w": -1e13}}}}'.encode(), "invalid_payload", "values.power_w"),
    (f'{{{TS}, "values": {{"power_w": 1e999}}}}'.encode(), "invalid_payload", "values.power_w"),
    (b'{"ts": 1764090000, "values": {"power_w": 1}}', "invalid_payload", "ts"),
    (b'{"ts": "0001-01-01T00:30:00+01:00", "values": {"power_w": 1}}', "invalid_payload", "ts"),
    (f'{{{TS}, "values": {{"power_w": 1}}, "quality": 1}}'.encode(), "invalid_payload", "quality"),
    (
        json.dumps(
            {"ts": "2026-11-25T17:00:00Z", "values": {f"c{i}_w": 1.0 for i in range(300)}}
        ).encode(),
        "too_many_readings",
        "values",
    ),
    (
        json.dumps(
            {"ts": "2026-11-25T17:00:00Z", "values": {f"c{i}_w": 1.0 for i in range(45_000)}}
        ).encode(),
        "too_large",
        "$",
    ),
]


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


async def test_no_coercion_and_bounded_messages(
    mqtt_broker: object, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "protocols.mqtt.bus")
    got: list[Reading] = []

    async def sink(readings: list[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        got.extend(readings)

    def cfg(name: str) -> BusConfig:
        return BusConfig(
            client_id=f"{name}-{unique}",
            host=mqtt_broker.host,  # type: ignore[attr-defined]
            port=mqtt_broker.port,  # type: ignore[attr-defined]
            backoff=Backoff(initial_s=0.05, cap_s=0.5),
        )

    heard: Counter[str] = Counter()
    async with Bus(cfg("sub")) as sub, Bus(cfg("pub")) as pub:
        sub.malformed.listen(lambda _filter, reason: heard.update([reason]))
        await subscribe_telemetry(sub, sink, prefix=unique, limits=TelemetryLimits(256, 65_536))
        await sub.wait_connected()
        topic = telemetry_topic("m1", unique)
        for n, (payload, _, _) in enumerate(REFUSED * 3):
            await pub.publish(topic, payload)
            await pub.publish(topic, encode_telemetry(T0, {"seq_count": float(n)}))
        await pub.flush(60)
        await eventually(lambda: len(got) + sub.malformed.total >= 2 * 3 * len(REFUSED), 60)
    assert sorted(r.value for r in got) == [float(n) for n in range(3 * len(REFUSED))]
    expected = Counter(reason for _, reason, _ in REFUSED * 3)
    assert sub.stats.malformed == dict(expected)
    assert heard == expected
    seen = {(rec.reason, rec.field) for rec in sub.malformed.recent}
    assert seen == {(reason, field) for _, reason, field in REFUSED}
    # each (reason, field) once as a warning, however often it came
    lines = [r.getMessage() for r in caplog.records if "dropped message" in r.getMessage()]
    assert len(lines) == len(seen) == 5
    for reason, field in seen:
        assert sum(f"({reason}): field {field!r}" in line for line in lines) == 1


def test_a_new_reason_is_still_a_warning_when_the_field_budget_is_spent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fields come from senders (``values.<any channel>``): once the budget of remembered
    (filter, reason, field) keys is spent, each new reason of a filter still warns once."""
    caplog.set_level(logging.DEBUG, "protocols.mqtt.bus")
    stats = MalformedStats(log_keys=2)
    for i in range(5):
        stats.record("f/+", "f/x", "invalid_payload", f"values.c{i}_w", "bad")
    stats.record("f/+", "f/x", "too_large", "$", "big")
    stats.record("f/+", "f/x", "too_large", "$", "big")
    levels = [(r.levelno, r.getMessage().split("(")[1].split(")")[0]) for r in caplog.records]
    warnings = [reason for level, reason in levels if level == logging.WARNING]
    assert warnings == ["invalid_payload", "invalid_payload", "too_large"]
    assert stats.counts() == {"invalid_payload": 5, "too_large": 2}
