"""What lighting engineers and operators see of the figures computed on the configuration:
previews of a night and a year, backtests against recorded traffic, savings and failures.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.lighting import STEPS_EXAMPLE
from lighting.config import ProgramConfig

#: Dates the previews, backtests and savings accept (the sun's positions are computed for them).
FIRST_DATE = date(1970, 1, 1)
LAST_DATE = date(2199, 12, 31)


class ChoosesProgram(Protocol):
    program_name: str | None
    program: ProgramConfig | None


C = TypeVar("C", bound=ChoosesProgram)


def at_most_one_program(request: C) -> C:
    """A request names a stored program or posts one, not both (neither: the calendar's)."""
    if request.program_name is not None and request.program is not None:
        raise ValueError("give at most one of program_name and program")
    return request


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
                    "program": {"name": "trial", "steps": STEPS_EXAMPLE},
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

    _one_program = model_validator(mode="after")(at_most_one_program)


class PreviewYearRequest(BaseModel):
    """Energy and savings per month of a year (every night whose evening lies in it)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"segment_id": "waldweg", "year": 2026}]}
    )

    segment_id: str = Field(min_length=1)
    year: int = Field(ge=FIRST_DATE.year, le=LAST_DATE.year)
    program_name: str | None = Field(default=None, min_length=1)
    program: ProgramConfig | None = None

    _one_program = model_validator(mode="after")(at_most_one_program)


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
    "CurvePointPublic",
    "EnergyPublic",
    "FailurePublic",
    "FailuresPublic",
    "MonthEnergyPublic",
    "NightPreviewPublic",
    "PreviewNightRequest",
    "PreviewYearRequest",
    "SavingsPublic",
    "SegmentSavingsPublic",
    "StepAtPublic",
    "YearPreviewPublic",
    "at_most_one_program",
]
