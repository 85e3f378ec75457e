"""MQTT transport: the bus (one resilient connection), topic routing and the telemetry scheme.

See :mod:`protocols.mqtt.bus` for connection, sessions, acknowledgement and malformed-payload
handling, and :mod:`protocols.mqtt.telemetry` for the device telemetry topic/JSON scheme.
"""

from kernel.backoff import Backoff
from protocols.mqtt.bus import AckMode, Bus
from protocols.mqtt.config import BusConfig, BusHealth, BusStats, HealthState, tls_context
from protocols.mqtt.inbound import Inbound, MalformedRecord
from protocols.mqtt.telemetry import (
    TelemetryPayload,
    encode_telemetry,
    subscribe_telemetry,
    telemetry_readings,
    telemetry_topic,
)

__all__ = [
    "AckMode",
    "Backoff",
    "Bus",
    "BusConfig",
    "BusHealth",
    "BusStats",
    "HealthState",
    "Inbound",
    "MalformedRecord",
    "TelemetryPayload",
    "encode_telemetry",
    "subscribe_telemetry",
    "telemetry_readings",
    "telemetry_topic",
    "tls_context",
]
