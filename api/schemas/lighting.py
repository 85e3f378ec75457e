"""What lighting engineers send and see of the configuration: programs, calendars, segments,
luminaires, the reason chain of a level, the configuration and its versions. Previews,
backtests, savings and failures: :mod:`api.schemas.lighting_figures`.

Programs and calendars are validated by the site file's own models
(:mod:`lighting.config`), so the web API refuses exactly what a site file would refuse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from lighting.config import CalendarConfig, ProgramConfig, RuleConfig, StepConfig

#: Example steps of a program (the OpenAPI examples).
STEPS_EXAMPLE: list[JsonValue] = [
    {"name": "on", "anchor": "sunset", "offset_min": -10, "level_pct": 100, "ramp_s": 60},
    {"name": "evening", "anchor": "clock", "clock": "22:00", "level_pct": 70, "ramp_s": 300},
    {"name": "after midnight", "anchor": "solar_midnight", "level_pct": 30, "ramp_s": 300},
    {"name": "off", "anchor": "sunrise", "offset_min": 10, "level_pct": 0, "ramp_s": 60},
]


class ProgramCreate(ProgramConfig):
    """A new dimming program: steps anchored to the sun or the clock, in time order."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Wohnstraße", "steps": STEPS_EXAMPLE}]}
    )


class ProgramUpdate(BaseModel):
    """The new steps of an existing program (its name stays)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"steps": STEPS_EXAMPLE}]}
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


__all__ = [
    "STEPS_EXAMPLE",
    "CalendarCreate",
    "CalendarPublic",
    "CalendarUpdate",
    "ChangePublic",
    "ConfigPublic",
    "ConfigReplace",
    "ConfigVersionPublic",
    "LuminairePublic",
    "ProgramCreate",
    "ProgramPublic",
    "ProgramUpdate",
    "ReasonPublic",
    "SegmentAssignment",
    "SegmentLivePublic",
    "SegmentPublic",
]
