"""Canonical data: what every transport turns its bytes into.

A :class:`Reading` is one value of one channel of one device at one UTC instant, with a
quality. Values that a device marks as "not implemented", or that could not be read, are
``None`` with quality ``UNAVAILABLE`` -- never zero and never the last value seen.

Channel names carry their unit (``power_w``, ``import_energy_wh``); :data:`CHANNEL_UNITS`
lists the well-known ones. Sign convention at a grid connection point: positive = import.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC, datetime


class Quality(enum.StrEnum):
    GOOD = "good"
    SUBSTITUTE = "substitute"
    UNAVAILABLE = "unavailable"


#: Well-known channels and their units. Drivers may add channels; the unit suffix is the rule.
CHANNEL_UNITS: dict[str, str] = {
    "power_w": "W",  # active power; at the grid point + = import
    "reactive_power_var": "var",
    "import_energy_wh": "Wh",  # only grows (until a counter reset / meter exchange)
    "export_energy_wh": "Wh",
    "pv_energy_wh": "Wh",  # PV behind the meter, where metered
    "voltage_l1_v": "V",
    "voltage_l2_v": "V",
    "voltage_l3_v": "V",
    "current_l1_a": "A",
    "current_l2_a": "A",
    "current_l3_a": "A",
    "power_l1_w": "W",
    "power_l2_w": "W",
    "power_l3_w": "W",
    "frequency_hz": "Hz",
    "soc_pct": "%",
    "battery_power_w": "W",  # + = charging
    "power_limit_pct": "%",
    "level_pct": "%",
    "vehicle_count": "1",
    "temperature_c": "°C",
    "operating_state": "",
}


def unit_for(channel: str) -> str:
    """Unit of a channel: the table above, else derived from the suffix (``_w`` → ``W``)."""
    if channel in CHANNEL_UNITS:
        return CHANNEL_UNITS[channel]
    for suffix, unit in (
        ("_wh", "Wh"),
        ("_w", "W"),
        ("_var", "var"),
        ("_va", "VA"),
        ("_v", "V"),
        ("_a", "A"),
        ("_hz", "Hz"),
        ("_pct", "%"),
        ("_c", "°C"),
        ("_s", "s"),
    ):
        if channel.endswith(suffix):
            return unit
    return ""


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one channel of one device at one UTC instant."""

    device_id: str
    channel: str
    value: float | None
    unit: str
    ts: datetime
    quality: Quality = Quality.GOOD

    def __post_init__(self) -> None:
        tz = self.ts.tzinfo
        # identity first: nearly every reading carries the UTC singleton, and utcoffset()
        # is the costly part of building a reading on the polling hot path
        if tz is not UTC and (tz is None or self.ts.utcoffset() != UTC.utcoffset(None)):
            raise ValueError(
                f"reading {self.device_id}/{self.channel}: ts must be UTC, got {self.ts!r}"
            )
        if self.value is None:
            if self.quality is not Quality.UNAVAILABLE:
                raise ValueError(
                    f"reading {self.device_id}/{self.channel}: value None needs quality unavailable"
                )
        elif not math.isfinite(self.value):
            raise ValueError(f"reading {self.device_id}/{self.channel}: value must be finite")

    @property
    def available(self) -> bool:
        return self.quality is not Quality.UNAVAILABLE

    @classmethod
    def unavailable(cls, device_id: str, channel: str, ts: datetime) -> Reading:
        return cls(device_id, channel, None, unit_for(channel), ts, Quality.UNAVAILABLE)

    @classmethod
    def prechecked(
        cls, device_id: str, channel: str, value: float, unit: str, ts: datetime, quality: Quality
    ) -> Reading:
        """A reading whose invariants the caller has already ensured: ``ts`` is in UTC and
        ``value`` is a finite float. For decoders on the ingest hot path that validated the
        payload field by field (pydantic); it skips :meth:`__post_init__` and the frozen
        dataclass's per-field ``object.__setattr__`` (about half the cost of a reading), and
        builds the same object."""
        reading = _new(cls)
        _set_device_id(reading, device_id)
        _set_channel(reading, channel)
        _set_value(reading, value)
        _set_unit(reading, unit)
        _set_ts(reading, ts)
        _set_quality(reading, quality)
        return reading


_new = object.__new__
# the slots' own descriptors: what the frozen dataclass's __init__ reaches via object.__setattr__
_set_device_id, _set_channel, _set_value, _set_unit, _set_ts, _set_quality = (
    Reading.__dict__[name].__set__
    for name in ("device_id", "channel", "value", "unit", "ts", "quality")
)


def utc(ts: datetime) -> datetime:
    """Return ``ts`` as an aware UTC datetime; naive datetimes are refused, not guessed."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: give a time zone")
    return ts.astimezone(UTC)
