"""Device telemetry over MQTT: the JSON topic/payload scheme and its canonical readings.

Scheme (one message = one instant of one device; QoS 1; not retained)::

    topic    {prefix}/devices/{device_id}/telemetry          prefix defaults to "waldstadt"
    payload  {"ts": "2026-03-29T01:15:00Z",                  ISO 8601 with offset (UTC advised)
              "values": {"power_w": 1234.5,                  channel → number, unit in the name
                         "import_energy_wh": 8123456,
                         "soc_pct": null},                   null = unavailable (not zero)
              "quality": "good"}                             optional: good | substitute

* ``device_id`` is the topic level; it must match ``[A-Za-z0-9_.:-]+``.
* Channel names are lower-case ``snake_case`` with a unit suffix (``_w``, ``_wh``, ``_pct``,
  ...); see :data:`kernel.readings.CHANNEL_UNITS`.
* Validation is **strict**: a value is a JSON number or ``null`` — ``true`` or ``"12.5"`` is
  refused, not coerced; non-finite numbers and magnitudes beyond :data:`MAX_ABS_VALUE` are
  refused. The refusal names the field (``values.power_w``).
* ``ts`` without an offset is refused (a device's local wall time cannot be guessed), and so
  is one that has no UTC equivalent (year 1 at +01:00).
* Unknown top-level fields are ignored, so devices can add diagnostics.
* One message is bounded (:class:`TelemetryLimits`): a larger one is refused whole before it
  is parsed (``too_large``), one with more values whole after it (``too_many_readings``,
  field ``values``).

Each value becomes one :class:`~kernel.readings.Reading` (``null`` → quality *unavailable*).
Whether the readings are *plausible* (a known device, an instant near now, a counter that
only grows within the device's rating) is the ingest's question (:mod:`scheduler.plausibility`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from kernel.errors import PayloadError
from kernel.readings import Quality, Reading, unit_for
from protocols.mqtt.bus import AckMode, Bus
from protocols.mqtt.inbound import Inbound, MessageRefused

DEFAULT_PREFIX = "waldstadt"
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]+")
#: No measurement in any unit comes near this (10^12 Wh is a TWh): beyond it, a value is refused.
MAX_ABS_VALUE = 1e12

Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Value = Annotated[float, Field(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]


@dataclass(frozen=True, slots=True)
class TelemetryLimits:
    """Bounds of one telemetry message: values per message, and its size in bytes."""

    max_readings: int = 256
    max_message_bytes: int = 65_536


class TelemetryPayload(BaseModel):
    """The JSON body of a telemetry message, validated strictly (no coercion)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False, strict=True)

    ts: AwareDatetime
    values: dict[Channel, Value | None]
    quality: Quality = Quality.GOOD

    @field_validator("ts")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError(f"{value.isoformat()} has no UTC equivalent") from exc


def telemetry_topic(device_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/devices/{device_id}/telemetry"


def telemetry_filter(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/devices/+/telemetry"


def device_id_from_topic(topic: str) -> str:
    """The ``{device_id}`` level of a telemetry topic (the third level from the end)."""
    parts = topic.rsplit("/", 3)
    if len(parts) != 4 or parts[1] != "devices" or parts[3] != "telemetry":
        raise PayloadError(topic, "topic", "not a {prefix}/devices/{device_id}/telemetry topic")
    device_id = parts[2]
    if not _DEVICE_ID.fullmatch(device_id):
        raise PayloadError(topic, "device_id", f"bad device id {device_id!r}")
    return device_id


def encode_telemetry(
    ts: datetime, values: Mapping[str, float | None], quality: Quality = Quality.GOOD
) -> bytes:
    """The payload a device (or a simulator) publishes; ``ts`` must be aware."""
    if ts.tzinfo is None:
        raise ValueError(f"telemetry ts {ts!r} is naive: give a time zone")
    body: dict[str, object] = {
        "ts": ts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "values": dict(values),
    }
    if quality is not Quality.GOOD:
        body["quality"] = quality.value
    return json.dumps(body, separators=(",", ":")).encode()


def telemetry_readings(device_id: str, payload: TelemetryPayload) -> list[Reading]:
    """One reading per value, at the payload's instant (in UTC).

    The payload's values are finite floats or ``None`` and ``ts`` is aware (the model checked
    them), so the readings are built without checking again (:meth:`Reading.prechecked`)."""
    ts = payload.ts
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    quality = payload.quality
    out: list[Reading] = []
    for channel, value in payload.values.items():
        if value is None:
            out.append(Reading.unavailable(device_id, channel, ts))
            continue
        unit = _UNITS.get(channel)
        if unit is None:
            if len(_UNITS) > 10_000:  # channel names come from devices: keep the cache bounded
                _UNITS.clear()
            unit = _UNITS[channel] = unit_for(channel)
        out.append(Reading.prechecked(device_id, channel, value, unit, ts, quality))
    return out


#: channel → unit, for :func:`telemetry_readings` (devices send the same few channels)
_UNITS: dict[str, str] = {}


ReadingSink = Callable[[list[Reading], Inbound[TelemetryPayload]], Awaitable[None]]


async def subscribe_telemetry(
    bus: Bus,
    sink: ReadingSink,
    *,
    prefix: str = DEFAULT_PREFIX,
    ack: AckMode = "auto",
    limits: TelemetryLimits | None = None,
) -> None:
    """Feed every device's telemetry to ``sink`` as readings.

    With ``ack="manual"`` the sink calls ``inbound.ack()`` once the readings are committed.
    A message beyond ``limits`` is refused whole, counted and logged by the bus."""

    bounds = limits or TelemetryLimits()
    device_ids: dict[str, str] = {}  # topic → device id; devices reuse their topics

    async def handle(inbound: Inbound[TelemetryPayload]) -> None:
        values = len(inbound.payload.values)
        if values > bounds.max_readings:
            raise MessageRefused(
                inbound.topic,
                "values",
                "too_many_readings",
                f"{values} readings, at most {bounds.max_readings} per message",
            )
        device_id = device_ids.get(inbound.topic)
        if device_id is None:
            device_id = device_id_from_topic(inbound.topic)
            if len(device_ids) > 100_000:
                device_ids.clear()
            device_ids[inbound.topic] = device_id
        await sink(telemetry_readings(device_id, inbound.payload), inbound)

    await bus.subscribe(
        telemetry_filter(prefix),
        TelemetryPayload,
        handle,
        ack=ack,
        max_bytes=bounds.max_message_bytes,
    )
