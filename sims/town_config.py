"""The town file: households (one by one or as seeded groups), buildings, PV plants, streets.

A town file lists households one by one (``households``) and/or as groups with seeded per-house
variation (``household_groups``: 60 houses stay one readable entry), non-residential grid
connections (``buildings``: a school on the G25 profile), PV plants (with a grid meter: a
producer member) and streets. Each household may have PV, a battery, a wallbox (``ev``) and a
storage heater (``heater``); its grid meter sums them all. :class:`sims.town.SimTown` starts
the devices a :class:`TownConfig` describes.
"""

from __future__ import annotations

import random
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    model_validator,
)

from kernel.config import load_yaml_file
from sims.modbus.loads import P14A_MIN_W, EvParams, HeaterParams

DEFAULT_TOWN = Path(__file__).with_name("default_town.yaml")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvSpec(_Spec):
    """A wallbox and its car: arrives around ``arrival``, leaves around ``departure`` (local),
    needing about ``energy_need_wh`` a day. Without ``smart_charging`` the wallbox keeps the
    §14a minimum (4.2 kW) whatever it is told; with it the member agreed to pauses."""

    max_w: float = Field(default=11_000.0, gt=0, le=22_000)
    energy_need_wh: float = Field(default=15_000.0, ge=0)
    arrival: time = time(18, 0)
    departure: time = time(7, 0)
    smart_charging: bool = False

    def params(self, seed: int) -> EvParams:
        floor = 0.0 if self.smart_charging else min(P14A_MIN_W, self.max_w)
        return EvParams(
            max_w=self.max_w,
            min_w=floor,
            energy_need_wh=self.energy_need_wh,
            arrival=self.arrival,
            departure=self.departure,
            seed=seed,
        )


class HeaterSpec(_Spec):
    """A storage heater charging ``energy_need_wh`` a night in its window (local times)."""

    max_w: float = Field(default=6_000.0, gt=0, le=30_000)
    energy_need_wh: float = Field(default=30_000.0, ge=0)
    window_start: time = time(22, 0)
    window_end: time = time(6, 0)

    @model_validator(mode="after")
    def _window(self) -> HeaterSpec:
        if self.window_start == self.window_end:
            raise ValueError("window_start and window_end must differ")
        return self

    def params(self) -> HeaterParams:
        return HeaterParams(
            max_w=self.max_w,
            energy_need_wh=self.energy_need_wh,
            window_start=self.window_start,
            window_end=self.window_end,
        )


class HouseholdSpec(_Spec):
    """One grid connection: meter, and optionally PV, battery, wallbox, storage heater."""

    prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    gateway: str
    #: display name (a member's private name in the site document)
    name: str | None = None
    annual_kwh: float = Field(default=4000.0, gt=0)
    #: BDEW standard load profile: H25 household, G25 business / school
    profile: Literal["H25", "G25"] = "H25"
    kwp: float | None = Field(default=8.0, gt=0)
    tilt_deg: float = Field(default=30.0, ge=0, le=90)
    azimuth_deg: float = Field(default=180.0, ge=0, lt=360)
    battery_wh: float | None = Field(default=None, gt=0)
    ev: EvSpec | None = None
    heater: HeaterSpec | None = None
    meter: Literal["sdm630", "sunspec"] = "sdm630"
    cloud_seed: int = 0
    #: set on the households a ``household_groups`` entry generates; not for town files
    group: str | None = None

    def device_names(self) -> list[str]:
        p = self.prefix
        names = [f"{p}-meter"]
        names += [f"{p}-pv"] if self.kwp else []
        names += [f"{p}-battery"] if self.battery_wh else []
        names += [f"{p}-ev"] if self.ev else []
        names += [f"{p}-heater"] if self.heater else []
        return names


class Range(_Spec):
    """A value drawn uniformly from ``min``..``max`` and rounded to a multiple of ``step``."""

    min: float = Field(gt=0)
    max: float = Field(gt=0)
    step: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def draw(self, rng: random.Random) -> float:
        value = round(rng.uniform(self.min, self.max) / self.step) * self.step
        return round(min(self.max, max(self.min, value)), 6)


class HouseholdGroupSpec(_Spec):
    """``count`` households ``{prefix}01`` … with deterministic per-house variation by ``seed``:
    annual consumption, PV size and roof direction, battery size; exactly ``with_pv`` of them
    have PV, ``with_battery`` of those a battery, ``with_ev`` a wallbox, ``with_heater`` a
    storage heater, ``with_sunspec_meter`` a SunSpec 203 meter (the others an SDM630). They sit
    ``per_gateway`` to a Modbus gateway ``{gateway}-1``, ``{gateway}-2`` …; houses behind one
    gateway see the same clouds."""

    prefix: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    count: int = Field(ge=1, le=999)
    gateway: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    per_gateway: int = Field(default=10, ge=1, le=40)
    seed: int = 0
    annual_kwh: Range = Range(min=1800, max=6000, step=100)
    kwp: Range = Range(min=4, max=12, step=0.1)
    battery_wh: Range = Range(min=5000, max=15000, step=500)
    azimuths_deg: list[float] = Field(default=[90.0, 135.0, 180.0, 225.0, 270.0], min_length=1)
    tilt_deg: float = Field(default=35.0, ge=0, le=90)
    with_pv: int = Field(default=0, ge=0)
    with_battery: int = Field(default=0, ge=0)
    with_ev: int = Field(default=0, ge=0)
    with_heater: int = Field(default=0, ge=0)
    with_sunspec_meter: int = Field(default=0, ge=0)
    ev: EvSpec = EvSpec()
    heater: HeaterSpec = HeaterSpec()

    @model_validator(mode="after")
    def _counts(self) -> HouseholdGroupSpec:
        for key in ("with_pv", "with_ev", "with_heater", "with_sunspec_meter"):
            if getattr(self, key) > self.count:
                raise ValueError(f"{key} {getattr(self, key)} is more than count {self.count}")
        if self.with_battery > self.with_pv:
            raise ValueError(
                f"with_battery {self.with_battery} is more than with_pv {self.with_pv} "
                "(batteries sit with PV)"
            )
        if any(not 0 <= a < 360 for a in self.azimuths_deg):
            raise ValueError("azimuths_deg must lie in 0..360")
        return self

    def households(self) -> list[HouseholdSpec]:
        """The generated households, the same for the same spec on every run."""
        rng = random.Random(f"household-group-{self.prefix}-{self.seed}")
        idx = list(range(self.count))
        pv = set(rng.sample(idx, self.with_pv))
        battery = set(rng.sample(sorted(pv), self.with_battery))
        ev = set(rng.sample(idx, self.with_ev))
        heater = set(rng.sample(idx, self.with_heater))
        sunspec = set(rng.sample(idx, self.with_sunspec_meter))
        width = max(2, len(str(self.count)))
        out = []
        for i in idx:
            block = i // self.per_gateway + 1
            annual = self.annual_kwh.draw(rng)
            kwp = self.kwp.draw(rng)
            azimuth = rng.choice(self.azimuths_deg)
            battery_wh = self.battery_wh.draw(rng)
            ev_need = self.ev.energy_need_wh * rng.uniform(0.6, 1.4)
            heater_need = self.heater.energy_need_wh * rng.uniform(0.7, 1.3)
            out.append(
                HouseholdSpec(
                    prefix=f"{self.prefix}{i + 1:0{width}d}",
                    gateway=f"{self.gateway}-{block}",
                    annual_kwh=annual,
                    kwp=kwp if i in pv else None,
                    tilt_deg=self.tilt_deg,
                    azimuth_deg=azimuth,
                    battery_wh=battery_wh if i in battery else None,
                    ev=self.ev.model_copy(update={"energy_need_wh": round(ev_need, -2)})
                    if i in ev
                    else None,
                    heater=self.heater.model_copy(update={"energy_need_wh": round(heater_need, -2)})
                    if i in heater
                    else None,
                    meter="sunspec" if i in sunspec else "sdm630",
                    cloud_seed=self.seed * 1000 + block,
                    group=self.prefix,
                )
            )
        return out


class PlantSpec(_Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    gateway: str
    kwp: float = Field(gt=0)
    tilt_deg: float = Field(default=30.0, ge=0, le=90)
    azimuth_deg: float = Field(default=180.0, ge=0, lt=360)
    cloud_seed: int = 0
    #: a grid meter ``{name}-meter`` at the plant's connection point (none: inverter only)
    meter: Literal["sdm630", "sunspec"] | None = None
    #: the plant's own consumption behind that meter (monitoring, standby), kWh a year
    own_use_kwh: float = Field(default=500.0, gt=0)
    #: display name (the producer member's name in the site document)
    display_name: str | None = None

    def device_names(self) -> list[str]:
        return [self.name] + ([f"{self.name}-meter"] if self.meter else [])


class StreetSpec(_Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    luminaires: int = Field(default=25, ge=1, le=1000)
    rated_power_w: float = Field(default=40.0, gt=0)
    sensor_dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    network: Literal["chirpstack", "tts"] = "chirpstack"


class TownConfig(_Spec):
    """A town file. ``households`` holds the listed households followed by those every
    ``household_groups`` entry generates (in file order); ``buildings`` are non-residential
    grid connections (a school: ``profile: G25``) with the same keys as a household."""

    name: str = "Waldstadt"
    latitude: float = Field(default=51.37, ge=-90, le=90)
    longitude: float = Field(default=7.70, ge=-180, le=180)
    timezone: str = "Europe/Berlin"
    #: German state code (public holidays of the lighting calendars, the site document)
    state: str = Field(default="NW", pattern=r"^[A-Z]{2}$")
    start: AwareDatetime | None = None
    speed: float = Field(default=144.0, gt=0)
    households: list[HouseholdSpec] = []
    household_groups: list[HouseholdGroupSpec] = []
    buildings: list[HouseholdSpec] = []
    plants: list[PlantSpec] = []
    streets: list[StreetSpec] = []

    @model_validator(mode="wrap")
    @classmethod
    def _expand_groups(
        cls, data: Any, handler: ModelWrapValidatorHandler[TownConfig]
    ) -> TownConfig:
        town = handler(data)
        if not town.household_groups:
            return town
        # households generated before (a dumped and re-read config) are generated afresh
        listed = [h for h in town.households if h.group is None]
        generated = [h for g in town.household_groups for h in g.households()]
        return town.model_copy(update={"households": listed + generated})

    @model_validator(mode="after")
    def _unique_names(self) -> TownConfig:
        seen: dict[str, str] = {}
        owners: list[tuple[str, list[str]]] = [
            *((f"households {h.prefix}", h.device_names()) for h in self.households),
            *((f"buildings {b.prefix}", b.device_names()) for b in self.buildings),
            *((f"plants {p.name}", p.device_names()) for p in self.plants),
        ]
        for owner, names in owners:
            for name in names:
                if name in seen:
                    raise ValueError(f"device {name!r} of {owner} clashes with {seen[name]}")
                seen[name] = owner
        streets = [s.name for s in self.streets]
        if len(set(streets)) != len(streets):
            raise ValueError(f"street names repeat: {sorted(streets)}")
        return self

    @property
    def members(self) -> list[HouseholdSpec]:
        """Households, then buildings: every grid connection with a member behind it."""
        return [*self.households, *self.buildings]


def load_town(path: Path | str = DEFAULT_TOWN) -> TownConfig:
    """Read a town file; unknown keys and bad values are ``ConfigError``s with the line."""
    return load_yaml_file(TownConfig, path)


def light_ids(street: StreetSpec) -> list[str]:
    """The node ids of a street's luminaires: ``{street}-01``, ``{street}-02`` …"""
    return [f"{street.name}-{i:02d}" for i in range(1, street.luminaires + 1)]
