"""Byte codecs for Waldstadt's own LoRaWAN sensors (encode and decode, both ways tested).

Traffic counter, **fPort 10**, 6 or 7 bytes, big-endian::

    byte 0     version            must be 1
    byte 1-2   uint16             vehicles counted in the window
    byte 3-4   uint16             window length in s (600 for the 10-minute window; 1..3600)
    byte 5     uint8              battery in % (0..100; 255 = not measured)
    byte 6     uint8, optional    flags: bit 0 sensor fault, bit 1 tamper; other bits 0

Readings: ``vehicle_count`` (in the window), ``traffic_window_s``, ``vehicle_flow_per_h``
(count × 3600 / window, the hourly flow used by traffic-adaptive lighting), ``battery_pct``
(omitted when 255) and ``sensor_fault`` (1/0, only when the flags byte is present). With the
sensor-fault flag set, the count readings are *unavailable*: a broken sensor must make the
lighting return to its design class, not dim to "no traffic".

Presence detector, **fPort 11**, 3 bytes::

    byte 0     version            must be 1
    byte 1     uint8              objects detected since the last uplink (1..255)
    byte 2     uint8              speed of the last object in km/h (255 = unknown)

Readings: ``presence_count`` and ``speed_kmh`` (omitted when 255).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from kernel.errors import PayloadError
from kernel.readings import Reading, unit_for

TRAFFIC_FPORT = 10
PRESENCE_FPORT = 11
_VERSION = 1
_FLAG_FAULT = 0x01
_FLAG_TAMPER = 0x02


@dataclass(frozen=True, slots=True)
class TrafficCount:
    vehicle_count: int
    window_s: int = 600
    battery_pct: int | None = None
    sensor_fault: bool | None = None  # None: no flags byte
    tamper: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.vehicle_count <= 0xFFFF:
            raise ValueError(f"vehicle_count {self.vehicle_count} outside 0..65535")
        if not 1 <= self.window_s <= 3600:
            raise ValueError(f"window_s {self.window_s} outside 1..3600")
        if self.battery_pct is not None and not 0 <= self.battery_pct <= 100:
            raise ValueError(f"battery_pct {self.battery_pct} outside 0..100")


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    objects: int
    speed_kmh: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.objects <= 255:
            raise ValueError(f"objects {self.objects} outside 1..255")
        if self.speed_kmh is not None and not 0 <= self.speed_kmh <= 254:
            raise ValueError(f"speed_kmh {self.speed_kmh} outside 0..254")


def encode_traffic(count: TrafficCount) -> bytes:
    battery = 255 if count.battery_pct is None else count.battery_pct
    body = struct.pack(">BHHB", _VERSION, count.vehicle_count, count.window_s, battery)
    if count.sensor_fault is None and not count.tamper:
        return body
    flags = (_FLAG_FAULT if count.sensor_fault else 0) | (_FLAG_TAMPER if count.tamper else 0)
    return body + bytes([flags])


def decode_traffic(data: bytes, source: str = "traffic") -> TrafficCount:
    """Decode fPort 10; wrong length, version, window or flags raise :class:`PayloadError`."""
    if len(data) not in (6, 7):
        raise PayloadError(source, "data", f"traffic frame must be 6 or 7 bytes, got {len(data)}")
    version, count, window_s, battery = struct.unpack_from(">BHHB", data)
    if version != _VERSION:
        raise PayloadError(source, "data.version", f"unsupported traffic codec version {version}")
    if not 1 <= window_s <= 3600:
        raise PayloadError(source, "data.window_s", f"window {window_s} s outside 1..3600")
    if battery != 255 and battery > 100:
        raise PayloadError(source, "data.battery_pct", f"battery {battery} % outside 0..100")
    fault: bool | None = None
    tamper = False
    if len(data) == 7:
        flags = data[6]
        if flags & ~(_FLAG_FAULT | _FLAG_TAMPER):
            raise PayloadError(source, "data.flags", f"unknown flag bits 0x{flags:02x}")
        fault, tamper = bool(flags & _FLAG_FAULT), bool(flags & _FLAG_TAMPER)
    return TrafficCount(count, window_s, None if battery == 255 else battery, fault, tamper)


def encode_presence(event: PresenceEvent) -> bytes:
    speed = 255 if event.speed_kmh is None else event.speed_kmh
    return struct.pack(">BBB", _VERSION, event.objects, speed)


def decode_presence(data: bytes, source: str = "presence") -> PresenceEvent:
    if len(data) != 3:
        raise PayloadError(source, "data", f"presence frame must be 3 bytes, got {len(data)}")
    version, objects, speed = data[0], data[1], data[2]
    if version != _VERSION:
        raise PayloadError(source, "data.version", f"unsupported presence codec version {version}")
    if objects == 0:
        raise PayloadError(source, "data.objects", "a presence event needs at least one object")
    return PresenceEvent(objects, None if speed == 255 else speed)


def _reading(device_id: str, channel: str, value: float | None, ts: datetime) -> Reading:
    if value is None:
        return Reading.unavailable(device_id, channel, ts)
    return Reading(device_id, channel, float(value), unit_for(channel), ts)


def traffic_readings(device_id: str, ts: datetime, data: bytes) -> list[Reading]:
    c = decode_traffic(data, source=device_id)
    broken = bool(c.sensor_fault)
    out = [
        _reading(device_id, "vehicle_count", None if broken else c.vehicle_count, ts),
        _reading(device_id, "traffic_window_s", c.window_s, ts),
        _reading(
            device_id,
            "vehicle_flow_per_h",
            None if broken else c.vehicle_count * 3600.0 / c.window_s,
            ts,
        ),
    ]
    if c.battery_pct is not None:
        out.append(_reading(device_id, "battery_pct", c.battery_pct, ts))
    if c.sensor_fault is not None:
        out.append(_reading(device_id, "sensor_fault", 1.0 if c.sensor_fault else 0.0, ts))
    return out


def presence_readings(device_id: str, ts: datetime, data: bytes) -> list[Reading]:
    e = decode_presence(data, source=device_id)
    out = [_reading(device_id, "presence_count", e.objects, ts)]
    if e.speed_kmh is not None:
        out.append(_reading(device_id, "speed_kmh", e.speed_kmh, ts))
    return out


#: fPort → decoder of the raw frame into readings (device id, instant, bytes).
Codec = Callable[[str, datetime, bytes], list[Reading]]
DEFAULT_CODECS: Mapping[int, Codec] = {
    TRAFFIC_FPORT: traffic_readings,
    PRESENCE_FPORT: presence_readings,
}
