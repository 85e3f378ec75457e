"""The lighting part of the site file, as pydantic models that build the core's values.

Load it with ``kernel.config.validate_data(LightingConfig, data["lighting"], ...)``: every
model forbids unknown keys, and every check of the core (a level above 100, steps out of
order, an unknown holiday region, a segment without coordinates …) surfaces as a validation
error at the item that caused it, so the loader names the key and the file line. Then
``config.site`` holds the built :class:`LightingSite`.

Example (YAML)::

    programs:
      - name: Wohnstraße
        steps:
          - {name: "on", anchor: sunset, offset_min: -10, level_pct: 100, ramp_s: 60}
          - {name: evening, anchor: clock, clock: "22:00", level_pct: 70, ramp_s: 300}
          - {name: after midnight, anchor: solar_midnight, level_pct: 30, ramp_s: 300}
          - {name: "off", anchor: sunrise, offset_min: 10, level_pct: 0, ramp_s: 60}
    calendars:
      - name: default
        state: NW
        default_program: Wohnstraße
        rules:
          - {kind: holiday, name: Feiertag, program: Wohnstraße}
    segments:
      - {id: seg-0, latitude_deg: 51.51, longitude_deg: 7.47, design_class: M4,
         lower_classes: [M5, M6], traffic: {capacity_veh_per_h: 600}, presence: {}}
    luminaires:
      - {id: lum-1, segment: seg-0, street: Hauptstraße, pole: 1, rated_power_w: 40}
    sensors:
      - {id: 70b3d57ed0000a01, segment: seg-0, street: Hauptstraße, pole: 1, network: tts}

Clock times must be quoted ("22:00"): unquoted, YAML 1.1 reads 22:00 as the number 1320.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from lighting.calendar import (
    Calendar,
    DateRangeRule,
    EventRule,
    HolidayRule,
    NthWeekdayRule,
    Rule,
    WeekdayRule,
)
from lighting.classes import Classing
from lighting.energy import DEFAULT_CURVE, DriverCurve
from lighting.errors import LightingInputError
from lighting.presence import PresenceRule
from lighting.preview import DEFAULT_CO2_G_PER_KWH
from lighting.program import MAX_RAMP_S, Anchor, Program, Step
from lighting.schedule import Programs
from lighting.site import LightingIndex, Luminaire, Segment, Sensor, build_index
from lighting.traffic import TrafficRule

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
Weekday = Annotated[int | str, Field(union_mode="left_to_right")]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _weekday(value: int | str) -> int:
    if isinstance(value, int):
        return value
    key = value.strip().lower()[:3]
    if key not in WEEKDAYS:
        raise LightingInputError("weekday", f"{value!r} is not mon … sun or 0 … 6")
    return WEEKDAYS[key]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepConfig(_Model):
    name: str = Field(min_length=1)
    anchor: Anchor
    clock: str | None = None
    offset_min: float = 0.0
    level_pct: float = Field(ge=0.0, le=100.0)
    ramp_s: float = Field(default=0.0, ge=0.0, le=MAX_RAMP_S)

    @field_validator("clock", mode="before")
    @classmethod
    def _clock_is_text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValueError('a clock time must be quoted text "HH:MM"')
        if isinstance(value, str) and not _CLOCK.match(value):
            raise ValueError(f'{value!r} is not "HH:MM"')
        return value

    def build(self) -> Step:
        clock = None
        if self.clock is not None:
            hours, minutes = self.clock.split(":")
            clock = time(int(hours), int(minutes))
        return Step(
            self.name, self.anchor, self.level_pct, self.ramp_s, self.offset_min * 60, clock
        )


class ProgramConfig(_Model):
    name: str = Field(min_length=1)
    steps: list[StepConfig]
    _program: Program | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build(self) -> ProgramConfig:
        self._program = Program(self.name, tuple(s.build() for s in self.steps))
        return self

    @property
    def program(self) -> Program:
        assert self._program is not None
        return self._program


class WeekdayRuleConfig(_Model):
    kind: Literal["weekday"]
    name: str
    program: str
    weekdays: list[Weekday]


class DateRangeRuleConfig(_Model):
    kind: Literal["date_range"]
    name: str
    program: str
    first: date
    last: date
    every_year: bool = False


class NthWeekdayRuleConfig(_Model):
    kind: Literal["nth_weekday"]
    name: str
    program: str
    weekday: Weekday
    n: int
    month: int | None = None


class HolidayRuleConfig(_Model):
    kind: Literal["holiday"]
    name: str
    program: str
    eve: bool = False


class EventRuleConfig(_Model):
    kind: Literal["event"]
    name: str
    program: str
    nights: list[date] = Field(min_length=1)


RuleConfig = Annotated[
    WeekdayRuleConfig
    | DateRangeRuleConfig
    | NthWeekdayRuleConfig
    | HolidayRuleConfig
    | EventRuleConfig,
    Field(discriminator="kind"),
]


def _rule(cfg: RuleConfig) -> Rule:
    if isinstance(cfg, WeekdayRuleConfig):
        return WeekdayRule(cfg.name, cfg.program, frozenset(_weekday(d) for d in cfg.weekdays))
    if isinstance(cfg, DateRangeRuleConfig):
        return DateRangeRule(cfg.name, cfg.program, cfg.first, cfg.last, cfg.every_year)
    if isinstance(cfg, NthWeekdayRuleConfig):
        return NthWeekdayRule(cfg.name, cfg.program, _weekday(cfg.weekday), cfg.n, cfg.month)
    if isinstance(cfg, HolidayRuleConfig):
        return HolidayRule(cfg.name, cfg.program, cfg.eve)
    return EventRule(cfg.name, cfg.program, frozenset(cfg.nights))


class CalendarConfig(_Model):
    name: str = Field(min_length=1)
    default_program: str
    country: str = "DE"
    state: str | None = "NW"
    rules: list[RuleConfig] = Field(default_factory=list)
    _calendar: Calendar | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build(self) -> CalendarConfig:
        rules = tuple(_rule(r) for r in self.rules)
        self._calendar = Calendar(self.name, rules, self.default_program, self.country, self.state)
        return self

    @property
    def calendar(self) -> Calendar:
        assert self._calendar is not None
        return self._calendar


class TrafficConfig(_Model):
    capacity_veh_per_h: float
    bands: list[tuple[float, int]] = Field(default_factory=lambda: [(0.5, 1), (0.25, 2)])
    low_samples: int = 2
    min_dwell_s: float = 600.0
    window_s: float = 600.0
    max_silence_s: float = 1500.0
    plausible_max_fraction: float = 3.0


class PresenceConfig(_Model):
    poles_ahead: int = 3
    poles_behind: int = 1
    boost_pct: float = 100.0
    hold_s: float = 60.0
    ramp_up_s: float = 1.0
    ramp_down_s: float = 30.0


class SegmentConfig(_Model):
    id: str = Field(min_length=1)
    latitude_deg: float | None = None
    longitude_deg: float | None = None
    timezone: str = "Europe/Berlin"
    calendar: str = "default"
    design_class: str
    lower_classes: list[str] = Field(default_factory=list)
    class_levels_pct: dict[str, float] = Field(default_factory=dict)
    design_level_pct: float = 100.0
    driver_min_pct: float = 1.0
    class_ramp_s: float = 60.0
    traffic: TrafficConfig | None = None
    presence: PresenceConfig | None = None
    _segment: Segment | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build(self) -> SegmentConfig:
        classing = Classing(
            self.id,
            self.design_class,
            tuple(self.lower_classes),
            dict(self.class_levels_pct),
            self.design_level_pct,
            self.driver_min_pct,
        )
        traffic = (
            TrafficRule(
                self.id, **{**self.traffic.model_dump(), "bands": tuple(self.traffic.bands)}
            )
            if self.traffic is not None
            else None
        )
        presence = (
            PresenceRule(self.id, **self.presence.model_dump())
            if self.presence is not None
            else None
        )
        self._segment = Segment(
            self.id,
            self.latitude_deg,
            self.longitude_deg,
            classing,
            self.calendar,
            self.timezone,
            traffic,
            presence,
            self.class_ramp_s,
        )
        return self

    @property
    def segment(self) -> Segment:
        assert self._segment is not None
        return self._segment


class LuminaireConfig(_Model):
    id: str = Field(min_length=1)
    segment: str
    street: str
    pole: int
    rated_power_w: float
    standby_power_w: float = 0.5
    driver_curve: str | None = None


#: The LoRaWAN network servers whose uplinks carry sensor data (docs/lighting.md).
Network = Literal["chirpstack", "tts"]
DEFAULT_NETWORK: Network = "chirpstack"


class SensorConfig(_Model):
    id: str = Field(min_length=1)
    segment: str
    street: str
    pole: int
    #: the LoRaWAN network server that forwards the sensor's uplinks
    network: Network = DEFAULT_NETWORK


class LightingSite(BaseModel):
    """The built core values: the index (segments, luminaires, streets) and the programs;
    ``sensor_networks`` names each sensor's network server (a sensor not named in it:
    ChirpStack)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    index: LightingIndex
    programs: Programs
    co2_g_per_kwh: float
    sensor_networks: dict[str, Network] = Field(default_factory=dict)

    def network_of(self, sensor_id: str) -> Network:
        """The network server whose uplinks carry ``sensor_id``'s data."""
        return self.sensor_networks.get(sensor_id, DEFAULT_NETWORK)

    @property
    def networks(self) -> frozenset[Network]:
        """The network servers the site's sensors use (none without sensors)."""
        return frozenset(self.network_of(s) for s in self.index.sensors)


class LightingConfig(_Model):
    programs: list[ProgramConfig]
    calendars: list[CalendarConfig]
    segments: list[SegmentConfig] = Field(default_factory=list)
    luminaires: list[LuminaireConfig] = Field(default_factory=list)
    sensors: list[SensorConfig] = Field(default_factory=list)
    driver_curves: dict[str, list[tuple[float, float]]] = Field(default_factory=dict)
    co2_g_per_kwh: float = Field(default=DEFAULT_CO2_G_PER_KWH, ge=0.0)
    _site: LightingSite | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build(self) -> LightingConfig:
        for kind, names in (
            ("programs", [p.name for p in self.programs]),
            ("calendars", [c.name for c in self.calendars]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise LightingInputError(kind, f"defined twice: {dupes}")
        programs = Programs(
            {p.name: p.program for p in self.programs},
            {c.name: c.calendar for c in self.calendars},
        )
        curves = {name: DriverCurve(tuple(points)) for name, points in self.driver_curves.items()}
        for seg in self.segments:
            if seg.calendar not in programs.calendars:
                raise LightingInputError(
                    f"segment {seg.id!r}.calendar", f"unknown calendar {seg.calendar!r}"
                )
        lums = []
        for lum in self.luminaires:
            if lum.driver_curve is not None and lum.driver_curve not in curves:
                raise LightingInputError(
                    f"luminaire {lum.id!r}.driver_curve", f"unknown curve {lum.driver_curve!r}"
                )
            curve = curves[lum.driver_curve] if lum.driver_curve is not None else DEFAULT_CURVE
            lums.append(
                Luminaire(
                    lum.id,
                    lum.segment,
                    lum.street,
                    lum.pole,
                    lum.rated_power_w,
                    lum.standby_power_w,
                    curve,
                )
            )
        sensors = [Sensor(s.id, s.segment, s.street, s.pole) for s in self.sensors]
        index = build_index([s.segment for s in self.segments], lums, sensors)
        self._site = LightingSite(
            index=index,
            programs=programs,
            co2_g_per_kwh=self.co2_g_per_kwh,
            sensor_networks={s.id: s.network for s in self.sensors},
        )
        return self

    @property
    def site(self) -> LightingSite:
        assert self._site is not None
        return self._site
