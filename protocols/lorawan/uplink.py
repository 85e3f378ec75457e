"""A LoRaWAN uplink as the network server reported it, independent of the server's JSON, and
the canonical readings it yields.

The frame's bytes are decoded by a codec chosen by fPort (:mod:`protocols.lorawan.codecs`);
when no codec is registered for the port but the network server decoded the payload itself
(ChirpStack ``object``, TTS ``decoded_payload``), its numeric fields whose names carry a unit
suffix (``temperature_c``, ``battery_pct``) become readings; other fields are ignored. An
application frame on a port with neither is refused as ``unknown_fport`` (a sensor configured
with the wrong port must be seen, not dropped without a word); fPort 0 carries MAC commands
only and yields no readings.

Readings are keyed by the device's DevEUI in lower-case hex (the one id both network servers
report); the instant is the network server's reception time in UTC.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kernel.errors import PayloadError
from kernel.readings import Reading, unit_for
from protocols.lorawan.codecs import DEFAULT_CODECS, Codec
from protocols.mqtt.inbound import MessageRefused

_UNIT_SUFFIXED = re.compile(r"^[a-z][a-z0-9_]*_(w|wh|v|a|hz|pct|c|s|kmh|var|va)$|^vehicle_count$")
DEV_EUI = re.compile(r"^[0-9A-Fa-f]{16}$")


@dataclass(frozen=True, slots=True)
class Uplink:
    network: str  # "chirpstack" or "tts"
    dev_eui: str  # lower-case hex, 16 digits
    device_name: str
    application_id: str
    f_port: int  # 0 = MAC commands only, no application payload
    f_cnt: int
    payload: bytes
    received_at: datetime  # UTC
    decoded: Mapping[str, Any] | None = None
    rssi_dbm: float | None = None  # best gateway
    snr_db: float | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.dev_eui


def b64decode_field(data: str, source: str, field_name: str) -> bytes:
    """Strict base64 (the alphabet and padding); a bad frame names its field."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(source, field_name, f"not valid base64: {exc}") from exc


def uplink_readings(uplink: Uplink, codecs: Mapping[int, Codec] = DEFAULT_CODECS) -> list[Reading]:
    """Readings of one uplink; raises :class:`PayloadError` when its codec refuses the frame,
    :class:`MessageRefused` (``unknown_fport``) when nothing can decode its port."""
    if uplink.f_port == 0:
        return []
    codec = codecs.get(uplink.f_port)
    if codec is not None:
        return codec(uplink.device_id, uplink.received_at, uplink.payload)
    if uplink.decoded is None:
        raise MessageRefused(
            uplink.device_id,
            "fPort" if uplink.network == "chirpstack" else "uplink_message.f_port",
            "unknown_fport",
            f"no codec for fPort {uplink.f_port} (known: {', '.join(map(str, sorted(codecs)))})"
            " and no payload decoded by the network server",
        )
    out: list[Reading] = []
    for name, value in uplink.decoded.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not _UNIT_SUFFIXED.match(name) or not math.isfinite(value):
            continue
        unit = "km/h" if name.endswith("_kmh") else unit_for(name)
        out.append(Reading(uplink.device_id, name, float(value), unit, uplink.received_at))
    return out
