"""One exception tree for everything that talks to devices, brokers and files.

::

    WaldstadtError
    ├── TransientError              retry later; the device or broker may come back
    │   ├── DeviceUnavailable       a device did not answer (timeout, refused, reset)
    │   └── BrokerUnavailable       the MQTT broker cannot be reached
    └── PermanentError              retrying will not help; fix the input
        ├── ConfigError             a site file, template or setting is wrong (names key, line)
        ├── PayloadError            a message or register block cannot be decoded (names field)
        ├── DeviceProtocolError     the device answered, but not as its protocol says
        └── AuthError               credentials refused

Library exceptions (pymodbus, aiomqtt, pydantic) are translated where they enter, with
``raise ... from exc``; only ``api/`` turns these into HTTP responses.
"""

from __future__ import annotations


class WaldstadtError(Exception):
    """Base of every error Waldstadt raises on purpose."""


class TransientError(WaldstadtError):
    """A condition that may clear by itself (device or broker away)."""


class PermanentError(WaldstadtError):
    """A condition that needs a change of input or configuration."""


class DeviceUnavailable(TransientError):
    """A device did not answer: its values are *unavailable*, never zero and never stale."""

    def __init__(self, device_id: str, reason: str) -> None:
        self.device_id = device_id
        self.reason = reason
        super().__init__(f"device {device_id!r} unavailable: {reason}")


class BrokerUnavailable(TransientError):
    def __init__(self, broker: str, reason: str) -> None:
        self.broker = broker
        self.reason = reason
        super().__init__(f"MQTT broker {broker} unavailable: {reason}")


class ConfigError(PermanentError):
    """Bad configuration. ``where`` names the file and line when known."""

    def __init__(self, field: str, reason: str, where: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.where = where
        loc = f" ({where})" if where else ""
        super().__init__(f"{field}: {reason}{loc}")


class PayloadError(PermanentError):
    """A payload (MQTT message, LoRaWAN uplink, register block) that cannot be decoded."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(f"{source}: field {field!r}: {reason}")


class DeviceProtocolError(PermanentError):
    def __init__(self, device_id: str, reason: str) -> None:
        self.device_id = device_id
        self.reason = reason
        super().__init__(f"device {device_id!r}: {reason}")


class AuthError(PermanentError):
    pass
