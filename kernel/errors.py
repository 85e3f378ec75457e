"""One exception tree for all of Waldstadt: devices, brokers, files and the pure cores.

::

    WaldstadtError
    ├── TransientError              retry later; the device or broker may come back
    │   ├── DeviceUnavailable       a device did not answer (timeout, refused, reset)
    │   ├── BrokerUnavailable       the MQTT broker cannot be reached
    │   └── StoreUnavailable        the database cannot be reached (store.errors)
    └── PermanentError              retrying will not help; fix the input
        ├── InputError              a value that cannot be used: names the field and the reason
        │   ├── ConfigError         a site file, template or setting is wrong (names key, line)
        │   ├── PayloadError        a message or register block cannot be decoded
        │   ├── LightingInputError  bad input to the lighting core (lighting.errors)
        │   ├── SettlementInputError  bad input to the settlement (vpp.settlement.errors)
        │   ├── InvalidDispatchInput  bad input to the dispatch (vpp.dispatch.errors)
        │   └── TimeGridError       an instant off the quarter-hour grid (kernel.quarterhours)
        ├── DeviceProtocolError     the device answered, but not as its protocol says
        └── AuthError               credentials refused

Every error carries its context as attributes (``device_id``, ``field``, ``reason``, …), not
only in its text. :class:`InputError` is also a ``ValueError``, so that pydantic turns one
raised inside a validator into a validation error that names the field.

Library exceptions (pymodbus, aiomqtt, pydantic, SQLAlchemy) are translated where they enter,
with ``raise ... from exc``; only ``api/`` turns these into HTTP responses.
"""

from __future__ import annotations


class WaldstadtError(Exception):
    """Base of every error Waldstadt raises on purpose."""


class TransientError(WaldstadtError):
    """A condition that may clear by itself (device, broker or database away)."""


class PermanentError(WaldstadtError):
    """A condition that needs a change of input or configuration."""


class InputError(PermanentError, ValueError):
    """A value that cannot be used. ``field`` is a readable path to it (``devices[3].port``,
    ``program 'Wohnstraße'.steps[2].level_pct``), ``reason`` says why."""

    def __init__(self, field: str, reason: str, message: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(message if message is not None else f"{field}: {reason}")


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


class ConfigError(InputError):
    """Bad configuration. ``where`` names the file and line when known."""

    def __init__(self, field: str, reason: str, where: str | None = None) -> None:
        self.where = where
        loc = f" ({where})" if where else ""
        super().__init__(field, reason, f"{field}: {reason}{loc}")


class PayloadError(InputError):
    """A payload (MQTT message, LoRaWAN uplink, register block) that cannot be decoded."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        super().__init__(field, reason, f"{source}: field {field!r}: {reason}")


class DeviceProtocolError(PermanentError):
    def __init__(self, device_id: str, reason: str) -> None:
        self.device_id = device_id
        self.reason = reason
        super().__init__(f"device {device_id!r}: {reason}")


class AuthError(PermanentError):
    pass


__all__ = [
    "AuthError",
    "BrokerUnavailable",
    "ConfigError",
    "DeviceProtocolError",
    "DeviceUnavailable",
    "InputError",
    "PayloadError",
    "PermanentError",
    "TransientError",
    "WaldstadtError",
]
