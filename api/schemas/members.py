"""What members see: their balances, their statement versions, community aggregates.

Energy in kWh and money in EUR are exact decimals, sent as JSON strings (``"12.345"``) so that
no float rounding creeps in; CO₂ in grams.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from vpp.settlement.balances import Resolution


class SettledFigures(BaseModel):
    """From the settlement statements: residual is drawn from the supplier, surplus fed to the
    grid outside the community."""

    consumption_kwh: str = Field(examples=["12.345"])
    generation_kwh: str = Field(examples=["3.2"])
    shared_received_kwh: str = Field(examples=["4.1"])
    shared_delivered_kwh: str = Field(examples=["0"])
    residual_kwh: str = Field(examples=["8.245"])
    surplus_kwh: str = Field(examples=["1.1"])
    amount_eur: str = Field(description="owed (negative: is owed), to the cent", examples=["2.17"])
    co2_avoided_g: str = Field(examples=["1640"])
    statements: int = Field(description="settled periods summed in this row", examples=[1])


class BalanceRow(BaseModel):
    start: datetime = Field(description="UTC start of the quarter-hour, local day or month")
    end: datetime
    quarter_hours: int = Field(description="metered quarter-hours in the row")
    substitute_quarter_hours: int = Field(description="of which substitute (L2) values")
    metered_kwh: dict[str, str] = Field(
        description="sums per meter channel", examples=[{"import_energy_kwh": "1.25"}]
    )
    settled: SettledFigures | None = Field(description="null: not settled (yet)")


class MemberBalancesPublic(BaseModel):
    member_id: str = Field(examples=["h01"])
    resolution: Resolution
    timezone: str = Field(examples=["Europe/Berlin"])
    start: date = Field(description="first local day")
    end: date = Field(description="local day after the last")
    rows: list[BalanceRow]


class StatementVersionPublic(BaseModel):
    run_id: int
    community_id: str
    period_start: datetime
    period_end: datetime
    version: int
    current: bool = Field(description="false: a newer version restated this period")
    created_at: datetime
    reason: str = Field(examples=["final daily settlement"])
    figures: SettledFigures


class StatementVersionsPublic(BaseModel):
    member_id: str
    start: date
    end: date
    versions: list[StatementVersionPublic]


class CommunityRow(BaseModel):
    start: datetime
    end: datetime
    members: int = Field(description="members settled in this row")
    settled: SettledFigures | None = Field(
        description="null when not settled, or when fewer than five members are in the row"
    )


class CommunityBalancesPublic(BaseModel):
    community_id: str
    resolution: Resolution
    timezone: str
    start: date
    end: date
    min_members: int = Field(description="aggregates cover at least this many members")
    rows: list[CommunityRow]


class DeletionRequestCreate(BaseModel):
    note: str | None = Field(default=None, max_length=500, examples=["please delete my data"])


class DeletionRequestPublic(BaseModel):
    member_id: str
    status: str = Field(examples=["requested"])
    requested_at: datetime
    audit_id: int = Field(description="the audit record of the request")


class IntervalExport(BaseModel):
    channel: str
    interval_start: datetime
    energy_kwh: str
    quality: str
    version: int
    restated: bool
    recorded_at: datetime


class AccountExport(BaseModel):
    username: str
    role: str
    created_at: datetime
    disabled: bool


class PersonalDataExport(BaseModel):
    """Everything stored about one member (GDPR art. 15 / 20)."""

    member_id: str
    exported_at: datetime
    accounts: list[AccountExport]
    intervals: list[IntervalExport]
    statements: list[StatementVersionPublic]
