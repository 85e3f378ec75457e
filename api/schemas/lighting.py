"""What lighting engineers send and see: programs, calendars, segments, luminaires, previews,
backtests, savings and failures.

Programs and calendars are validated by the site file's own models
(:mod:`lighting.config`), so the web API refuses exactly what a site file would refuse.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from lighting.config import CalendarConfig, ProgramConfig, RuleConfig, StepConfig

#: Dates the previews, backtests and savings accept (the sun's positions are computed for them).
FIRST_DATE = date(1970, 1, 1)
LAST_DATE = date(2199, 12, 31)

_STEPS_EXAMPLE: list[JsonValue] = [
    {"name": "on", "anchor": "sunset", "offset_min": -10, "level_pct": 100, "ramp_s": 60},
    {"name": "evening", "anchor": "clock", "clock": "22:00", "level_pct": 70, "ramp_s": 300},
    {"name": "after midnight", "anchor": "solar_midnight", "level_pct": 30, "ramp_s": 300},
    {"name": "off", "anchor": "sunrise", "offset_min": 10, "level_pct": 0, "ramp_s": 60},
]


class ProgramCreate(ProgramConfig):
    """A new dimming program: steps anchored to the sun or the clock, in time order."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Wohnstraße", "steps": _STEPS_EXAMPLE}]}
    )


class ProgramUpdate(BaseModel):
    """The new steps of an existing program (its name stays)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"steps": _STEPS_EXAMPLE}]}
    )

    steps: list[StepConfig]


class ProgramPublic(BaseModel):
    name: str
    steps: list[StepConfig]
    calendars: list[str] = Field(description="calendars that choose this program on some night")


class CalendarCreate(CalendarConfig):
    """A calendar: the default program and rules (weekday, date range, nth weekday, holiday,
    event) that choose another one for some nights."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "wohnstrasse",
                    "default_program": "Wohnstraße",
                    "state": "NW",
                    "rules": [
                        {"kind": "holiday", "name": "Feiertag", "program": "Festbeleuchtung"}
                    ],
                }
            ]
        }
    )


class CalendarUpdate(BaseModel):
    """Everything of a calendar but its name."""

    model_config = ConfigDict(extra="forbid")

    default_program: str
    country: str = "DE"
    state: str | None = "NW"
    rules: list[RuleConfig] = Field(default_factory=list)


class CalendarPublic(BaseModel):
    name: str
    default_program: str
    country: str
    state: str | None
    rules: list[dict[str, Any]]
    segments: list[str] = Field(description="segments that follow this calendar")


class SegmentAssignment(BaseModel):
    """Give a segment a calendar, or one program for every night (exactly one of the two).

    A program is assigned through the calendar ``only <program>`` (no rules), created with
    the holiday region of the segment's current calendar when it does not exist yet."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"calendar": "wohnstrasse"}]}
    )

    calendar: str | None = Field(default=None, min_length=1)
    program: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.calendar is None) == (self.program is None):
            raise ValueError("give exactly one of calendar and program")
        return self


class SegmentLivePublic(BaseModel):
    """The running service's latest decision for the segment (before presence and overrides)."""

    program: str
    step: str | None
    program_pct: float
    lighting_class: str
    level_pct: float
    reasons: list[str]


class SegmentPublic(BaseModel):
    id: str
    calendar: str
    design_class: str
    lower_classes: list[str]
    latitude_deg: float | None
    longitude_deg: float | None
    timezone: str
    traffic_adaptive: bool
    presence: bool
    luminaires: list[str]
    live: SegmentLivePublic | None = Field(description="None without a running lighting service")


class LuminairePublic(BaseModel):
    id: str
    segment: str
    street: str
    pole: int
    rated_power_w: float
    standby_power_w: float
    driver_curve: str | None
    level_pct: float | None = Field(description="current level; None without a running service")
    reason: str | None = Field(description="the reason chain of the current level")


class ReasonPublic(BaseModel):
    """Why a luminaire is as bright as it is, from the running service's latest decision."""

    luminaire_id: str
    segment_id: str
    level_pct: float
    ramp_s: float
    base_pct: float = Field(description="the level before presence and overrides")
    overridden: bool
    reasons: list[str] = Field(
        examples=[
            [
                "program 'Wohnstraße' step 'after midnight' 20 %",
                "raised to floor 40 % (lowest permitted class P5 40 %, driver minimum 10 %)",
            ]
        ]
    )
    reason_text: str


class ConfigPublic(BaseModel):
    """The lighting configuration that applies, and where it comes from."""

    source: str = Field(examples=["stored version 3", "site file"])
    version: int | None = Field(description="the stored version; None: the site file's section")
    base_hash: str = Field(description="hash of the site file section the edits started from")
    site_hash: str = Field(description="hash of the running site file's section ('' for none)")
    document: dict[str, Any] = Field(description="the whole lighting document")


class ConfigReplace(BaseModel):
    """A whole lighting document (the ``lighting:`` section of a site file) as the new version."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]
    change: str = Field(default="configuration replaced", min_length=1, max_length=500)


class ConfigVersionPublic(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    change: str
    base_hash: str


class ChangePublic(BaseModel):
    """The outcome of a change: the stored version and whether the running service took it."""

    version: int
    applied: bool = Field(description="the running lighting service was reconfigured")
    detail: str = Field(examples=["stored as version 4; the lighting service runs it"])
    item: dict[str, Any] = Field(description="the program, calendar or segment as changed")


class PreviewNightRequest(BaseModel):
    """Preview one night of a segment: its calendar's program, a stored program by name, or an
    unsaved program posted here (at most one of ``program_name`` and ``program``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"segment_id": "waldweg", "night": "2026-12-24"},
                {
                    "segment_id": "waldweg",
                    "night": "2026-12-24",
                    "program": {"name": "trial", "steps": _STEPS_EXAMPLE},
                },
            ]
        },
    )

    segment_id: str = Field(min_length=1)
    night: date = Field(
        ge=FIRST_DATE, le=LAST_DATE, description="the local date of the night's evening"
    )
    program_name: str | None = Field(default=None, min_length=1)
    program: ProgramConfig | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        if self.program_name is not None and self.program is not None:
            raise ValueError("give at most one of program_name and program")
        return self


class PreviewYearRequest(BaseModel):
    """Energy and savings per month of a year (every night whose evening lies in it)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"segment_id": "waldweg", "year": 2026}]}
    )

    segment_id: str = Field(min_length=1)
    year: int = Field(ge=FIRST_DATE.year, le=LAST_DATE.year)
    program_name: str | None = Field(default=None, min_length=1)
    program: ProgramConfig | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        if self.program_name is not None and self.program is not None:
            raise ValueError("give at most one of program_name and program")
        return self


class StepAtPublic(BaseModel):
    at: datetime
    local_time: str = Field(examples=["2026-12-24 16:18"])
    step: str
    level_pct: float = Field(description="at the design class, floor applied")
    ramp_s: float
    note: str


class CurvePointPublic(BaseModel):
    at: datetime
    level_pct: float


class EnergyPublic(BaseModel):
    energy_wh: int
    baseline_wh: int = Field(description="full light from sunset to sunrise, standby included")
    savings_wh: int
    savings_pct: float
    co2_kg: float
    co2_saved_kg: float


class NightPreviewPublic(EnergyPublic):
    segment_id: str
    night: date
    program: str
    rule: str = Field(description="the calendar rule that chose the program, or 'preview'")
    steps: list[StepAtPublic]
    curve: list[CurvePointPublic] = Field(description="level over the night (ramps included)")
    svg: str = Field(description="the level over the night as an SVG document")


class MonthEnergyPublic(EnergyPublic):
    month: str = Field(examples=["2026-12"])
    nights: int


class YearPreviewPublic(EnergyPublic):
    segment_id: str
    year: int
    program: str = Field(description="the program previewed, or 'calendar'")
    months: list[MonthEnergyPublic]
    svg: str = Field(description="energy per night against full light, as an SVG document")


class BacktestNightPublic(BaseModel):
    night: date
    program: str
    energy_wh: int = Field(description="with traffic adaptation")
    program_only_wh: int = Field(description="the program alone (design class)")
    baseline_wh: int
    lowered_h: float = Field(description="hours at a lowered class")


class BacktestPublic(BaseModel):
    segment_id: str
    first_night: date
    last_night: date
    records: int = Field(description="CSV rows of this segment")
    energy_wh: int = Field(description="with traffic adaptation")
    program_only_wh: int = Field(description="without traffic adaptation")
    baseline_wh: int
    adaptation_saved_wh: int
    adaptation_saved_pct: float = Field(description="of the program-only energy")
    savings_pct: float = Field(description="against full light")
    lowered_h: float
    nights: list[BacktestNightPublic]


class SegmentSavingsPublic(EnergyPublic):
    segment_id: str
    nights: int


class SavingsPublic(EnergyPublic):
    first_night: date
    last_night: date
    basis: str
    segments: list[SegmentSavingsPublic]


class FailurePublic(BaseModel):
    luminaire_id: str
    segment_id: str | None = Field(description="None: not in the current configuration")
    kind: str = Field(examples=["lamp_failure", "communication_lost"])
    severity: str
    since: datetime
    message: str
    alarm_key: str


class FailuresPublic(BaseModel):
    active: list[FailurePublic]
    by_kind: dict[str, int]


__all__ = [
    "FIRST_DATE",
    "LAST_DATE",
    "BacktestNightPublic",
    "BacktestPublic",
    "CalendarCreate",
    "CalendarPublic",
    "CalendarUpdate",
    "ChangePublic",
    "ConfigPublic",
    "ConfigReplace",
    "ConfigVersionPublic",
    "CurvePointPublic",
    "EnergyPublic",
    "FailurePublic",
    "FailuresPublic",
    "LuminairePublic",
    "MonthEnergyPublic",
    "NightPreviewPublic",
    "PreviewNightRequest",
    "PreviewYearRequest",
    "ProgramCreate",
    "ProgramPublic",
    "ProgramUpdate",
    "ReasonPublic",
    "SavingsPublic",
    "SegmentAssignment",
    "SegmentLivePublic",
    "SegmentPublic",
    "StepAtPublic",
    "YearPreviewPublic",
]
