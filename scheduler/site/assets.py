"""The site file's devices and members: where each device answers, and what each member has
(grid meter, PV, battery, EV charger, storage heater)."""

from __future__ import annotations

from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    Field,
    field_validator,
)

from kernel.config import Path_
from protocols.modbus.factory import known_drivers
from scheduler.site.fields import Id, LocalTime, _invalid, _Model
from scheduler.site.plausibility import MeterExchangeConfig


class SiteInfo(_Model):
    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = "Europe/Berlin"
    #: German state code (``NW``, ``BY`` …) for public holidays
    state: str = "NW"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _invalid(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("state")
    @classmethod
    def _known_state(cls, value: str) -> str:
        states = sorted(s for s in holidays.list_supported_countries()["DE"] if len(s) == 2)
        if value not in states:
            raise _invalid(f"unknown German state {value!r}; known: {', '.join(states)}")
        return value


class DeviceConfig(_Model):
    name: Id
    #: ``sunspec`` (model chain discovered) or a register template in protocols/templates
    driver: str
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=1, le=247)
    timeout_s: float = Field(default=1.0, gt=0)
    #: recorded exchanges of the device's meter, in time order
    exchanges: list[MeterExchangeConfig] = Field(default_factory=list)

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        drivers = known_drivers()
        if value not in drivers:
            raise _invalid(f"unknown driver {value!r}; known: {', '.join(drivers)}")
        return value


class PvConfig(_Model):
    device: str
    rated_power_w: float = Field(gt=0)
    curtailable: bool = True


class BatteryConfig(_Model):
    device: str
    capacity_wh: float = Field(gt=0)
    max_charge_w: float = Field(gt=0)
    max_discharge_w: float = Field(gt=0)
    min_soc_pct: float = Field(default=10.0, ge=0, le=100)


class EvConfig(_Model):
    device: str
    max_power_w: float = Field(gt=0)
    energy_needed_wh: float = Field(ge=0)
    arrival: LocalTime = time(18, 0)
    departure: LocalTime = time(7, 0)
    smart_charging: bool = False


class StorageHeaterConfig(_Model):
    device: str
    max_power_w: float = Field(gt=0)
    energy_needed_wh: float = Field(ge=0)
    window_start: LocalTime = time(22, 0)
    window_end: LocalTime = time(6, 0)


class MemberConfig(_Model):
    id: Id
    #: display name; private to the member and the operator
    name: str = Field(min_length=1)
    #: device name of the grid-point meter (a driver that reads import and export energy)
    meter: str
    #: the rating of the grid connection behind ``meter``, in W; default
    #: :func:`scheduler.site.ratings.default_grid_connection_w`
    grid_connection_w: float | None = Field(default=None, gt=0)
    load_profile: Literal["H25", "G25", "P25", "S25"] = "H25"
    annual_kwh: float = Field(default=4000.0, gt=0)
    pv: list[PvConfig] = Field(default_factory=list)
    battery: BatteryConfig | None = None
    ev: EvConfig | None = None
    storage_heater: StorageHeaterConfig | None = None

    def device_roles(self) -> list[tuple[Path_, str]]:
        """(key path within the member, device name) of every device the member uses."""
        roles: list[tuple[Path_, str]] = [(("meter",), self.meter)]
        roles += [(("pv", i, "device"), pv.device) for i, pv in enumerate(self.pv)]
        for role in ("battery", "ev", "storage_heater"):
            cfg = getattr(self, role)
            if cfg is not None:
                roles.append(((role, "device"), cfg.device))
        return roles
