"""The site file's trust keys: recorded meter exchanges, and the bounds of what is plausible.

A meter exchange is recorded on the device (``devices[].exchanges``): when, and per energy
counter the old meter's final and the new meter's first reading. Without such a record a
counter that goes down is a fault, never a reset (:mod:`vpp.metering.plausibility`).

The ``plausibility`` section bounds what ingest accepts: the time window around now and the
size of one telemetry message. The reference is ``docs/site.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, model_validator

from protocols.modbus.factory import SUNSPEC
from protocols.modbus.template import load_template
from protocols.sunspec.mapping import (
    CONTROL_MODELS,
    DER_MEASURE_MODEL,
    INVERTER_MODELS,
    METER_MODELS,
    channels_for,
)
from scheduler.site.fields import _Model, value_utc
from vpp.metering.registers import MeterExchange

#: Energy registers that only grow (until a recorded meter exchange or their wrap).
COUNTER_CHANNELS = frozenset(
    {"import_energy_wh", "export_energy_wh", "pv_energy_wh", "load_energy_wh"}
)
#: Measured power channels bounded by the device's rating (in W, either sign).
POWER_CHANNELS = frozenset(
    {"power_w", "power_l1_w", "power_l2_w", "power_l3_w", "battery_power_w", "load_power_w"}
)
_SUNSPEC_CHANNELS = frozenset(
    channels_for((*INVERTER_MODELS, *METER_MODELS, DER_MEASURE_MODEL, 120, *CONTROL_MODELS))
)

#: Counter values in whole Wh.
WholeWh = Annotated[int, Field(ge=0, le=10**15)]


def driver_channels(driver: str) -> frozenset[str]:
    """The channels a device with this driver reads (a template's; for ``sunspec`` every
    channel the SunSpec mapping yields)."""
    if driver == SUNSPEC:
        return _SUNSPEC_CHANNELS
    return frozenset(load_template(driver).channels)


class MeterExchangeConfig(_Model):
    """One exchange of a device's meter: readings at or before ``at`` are the old meter's,
    readings after it the new one's."""

    at: AwareDatetime
    #: energy counter → the old meter's last value, in Wh
    old_final_wh: dict[str, WholeWh] = Field(min_length=1)
    #: energy counter → the new meter's first value, in Wh (usually 0)
    new_initial_wh: dict[str, WholeWh] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_counters(self) -> Self:
        if set(self.old_final_wh) != set(self.new_initial_wh):
            raise ValueError(
                f"old_final_wh names {sorted(self.old_final_wh)}, new_initial_wh names "
                f"{sorted(self.new_initial_wh)}: give both values of every counter exchanged"
            )
        return self

    @property
    def at_utc(self) -> datetime:
        return value_utc(self.at)

    def exchange(self, channel: str) -> MeterExchange | None:
        """The metering core's view of this exchange for one counter (None: not exchanged)."""
        if channel not in self.old_final_wh:
            return None
        return MeterExchange(self.at_utc, self.old_final_wh[channel], self.new_initial_wh[channel])


class PlausibilityConfig(_Model):
    """What ingest accepts. Readings outside ``[now − max_age_s, now + max_ahead_s]`` (the
    service's clock) are quarantined; a telemetry message with more readings or bytes than
    allowed is refused whole, naming the field."""

    #: a device may deliver what it buffered while the service or the network was away
    max_age_s: int = Field(default=7 * 86_400, gt=0)
    #: device clocks run a little ahead
    max_ahead_s: int = Field(default=300, ge=0)
    max_readings_per_message: int = Field(default=256, ge=1, le=100_000)
    max_message_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)


__all__ = [
    "COUNTER_CHANNELS",
    "POWER_CHANNELS",
    "MeterExchangeConfig",
    "PlausibilityConfig",
    "WholeWh",
    "driver_channels",
]
