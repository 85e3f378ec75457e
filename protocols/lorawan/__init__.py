"""LoRaWAN: network-server uplinks (ChirpStack v4, The Things Stack v3) to canonical readings.

:func:`subscribe_uplinks` wires a network server's MQTT uplink topic on the bus to a reading
sink; :mod:`protocols.lorawan.codecs` documents the byte formats of Waldstadt's sensors.
"""

from protocols.lorawan.chirpstack import ChirpStackUplink, chirpstack_filter, parse_chirpstack
from protocols.lorawan.codecs import (
    DEFAULT_CODECS,
    PRESENCE_FPORT,
    TRAFFIC_FPORT,
    PresenceEvent,
    TrafficCount,
    decode_presence,
    decode_traffic,
    encode_presence,
    encode_traffic,
)
from protocols.lorawan.ingest import subscribe_uplinks
from protocols.lorawan.tts import TtsUplink, parse_tts, tts_filter
from protocols.lorawan.uplink import Uplink, uplink_readings

__all__ = [
    "DEFAULT_CODECS",
    "PRESENCE_FPORT",
    "TRAFFIC_FPORT",
    "ChirpStackUplink",
    "PresenceEvent",
    "TrafficCount",
    "TtsUplink",
    "Uplink",
    "chirpstack_filter",
    "decode_presence",
    "decode_traffic",
    "encode_presence",
    "encode_traffic",
    "parse_chirpstack",
    "parse_tts",
    "subscribe_uplinks",
    "tts_filter",
    "uplink_readings",
]
