"""What operators see and do: assets and the community now, plans, alarms, commands (and manual
overrides), settlement runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator

from api.schemas.members import SettledFigures


class ReadingPublic(BaseModel):
    """One channel of a device in the newest cycle. ``value`` is None when the device reported
    the channel as not implemented or unavailable (``quality`` says which), never 0."""

    channel: str = Field(examples=["soc_pct"])
    value: float | None = Field(examples=[54.2])
    unit: str = Field(examples=["%"])
    quality: str = Field(examples=["good"])
    ts: datetime


class SetpointPublic(BaseModel):
    """A setpoint the controller keeps in force (and refreshes before the device reverts)."""

    command_id: str
    kind: str = Field(examples=["battery_power_w"])
    value: float = Field(examples=[-2000])
    source: str = Field(description="the plan's dispatch, or override:<operator>")
    expires_at: datetime
    revert_s: int = Field(description="the device drops the setpoint by itself after this")


class AssetPublic(BaseModel):
    """One device of the site now: whose it is, what it is for, whether it answers and why
    not, its newest readings and the setpoints in force."""

    device: str = Field(examples=["h04-battery"])
    driver: str = Field(examples=["battery_inverter"])
    member_id: str | None = Field(description="the member whose asset it is (None: nobody's)")
    roles: list[str] = Field(examples=[["battery"]])
    available: bool
    reason: str = Field(description="why it is unavailable ('' when it answers)")
    read_at: datetime | None = Field(description="the cycle the readings are from")
    readings: list[ReadingPublic]
    setpoints: list[SetpointPublic]


class AssetListPublic(BaseModel):
    service_running: bool = Field(
        description="false: the app serves from the database alone and knows no live state"
    )
    at: datetime | None = Field(description="the newest cycle (None before the first)")
    total: int = Field(description="devices of the site")
    available: int = Field(description="devices that answered in the newest cycle")
    assets: list[AssetPublic] = Field(description="the devices that match the filters")


class CommunityNowPublic(BaseModel):
    """A community at the newest cycle, in kW (grid: + = import). Members whose meter did not
    answer are left out of the sums and counted in ``unread``."""

    community_id: str
    name: str
    members: int
    unread: int
    generation_kw: float
    consumption_kw: float
    shared_kw: float
    grid_kw: float
    import_headroom_kw: float | None = Field(description="None: the feeder has no import limit")
    export_headroom_kw: float | None = Field(description="None: the feeder has no export limit")
    at: datetime


class ViolationPublic(BaseModel):
    """A soft constraint the plan could not keep, and by how much."""

    constraint: str = Field(examples=["feeder_limit"])
    amount_wh: float | None = None
    member_id: str | None = None
    asset_id: str | None = None
    qh: int | None = Field(default=None, description="quarter-hour index in the plan")


class PlanSummaryPublic(BaseModel):
    id: int
    community_id: str
    interval_start: datetime = Field(description="first quarter-hour the plan covers (UTC)")
    created_at: datetime
    created_by: str
    status: str | None = Field(description="the solver outcome", examples=["optimal"])
    objective_eur: float | None = None
    quarter_hours: int | None = None
    violations: list[ViolationPublic]
    alarms: list[dict[str, Any]]
    notes: list[str]


class PlanPublic(PlanSummaryPublic):
    payload: dict[str, Any] = Field(description="the full plan as stored (schedules per asset)")


class PlanListPublic(BaseModel):
    community_id: str
    plans: list[PlanSummaryPublic]


class AlarmPublic(BaseModel):
    id: int
    ts: datetime
    alarm_key: str = Field(examples=["device:inv-7:communication_lost"])
    source: str
    kind: str
    severity: str = Field(examples=["warning"])
    event: str = Field(description="raise or clear")
    message: str
    details: dict[str, Any]


class CommandPublic(BaseModel):
    command_id: str
    target: str
    value: JsonValue
    issued_at: datetime
    expires_at: datetime
    status: str = Field(examples=["pending"])
    status_changed_at: datetime
    detail: str | None = None


#: Bounds of a manual setpoint per kind (the device clamps further to its own limits).
OVERRIDE_BOUNDS: dict[str, tuple[float, float]] = {
    "power_limit_pct": (0.0, 100.0),
    "battery_power_w": (-1_000_000.0, 1_000_000.0),
    "load_power_w": (0.0, 1_000_000.0),
    "dim_level_pct": (0.0, 100.0),
}


class OverrideCreate(BaseModel):
    """A manual setpoint for one device, valid until it expires (then the plan takes over).

    While it is in force it wins over the plan's setpoint of the same kind for that device;
    the controller refreshes it like its own setpoints, so the device does not revert."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="the device (its name in the site file)",
        examples=["hh01-battery"],
    )
    kind: Literal["power_limit_pct", "battery_power_w", "load_power_w", "dim_level_pct"] = Field(
        description="what to set: PV limit in % of rating, battery power in W (+ = charge), "
        "EV charger / storage heater power in W, luminaire level in %",
        examples=["battery_power_w"],
    )
    value: float = Field(
        allow_inf_nan=False, description="the setpoint in the kind's unit", examples=[-2000]
    )
    expires_in_s: int = Field(
        ge=60, le=24 * 3600, description="seconds until the override lapses", examples=[3600]
    )
    reason: str = Field(min_length=1, max_length=500, examples=["feeder maintenance"])

    @field_validator("value")
    @classmethod
    def _within_the_kinds_bounds(cls, value: float, info: ValidationInfo) -> float:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself was refused; that error names it
            return value
        lo, hi = OVERRIDE_BOUNDS[kind]
        if not lo <= value <= hi:
            raise ValueError(f"{value:g} is outside {lo:g}..{hi:g} for {kind}")
        return value


class SettlementRunPublic(BaseModel):
    id: int
    community_id: str
    period_start: datetime
    period_end: datetime
    version: int
    current: bool = Field(description="false: restated by a newer version")
    created_at: datetime
    reason: str
    members: int


class MemberStatementPublic(BaseModel):
    member_id: str
    figures: SettledFigures


class SettlementRunDetailPublic(SettlementRunPublic):
    statements: list[MemberStatementPublic]
