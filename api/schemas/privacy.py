"""Members' privacy requests as operators handle them: deletion requests and erasures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DEVICE = r"^[A-Za-z0-9._:/-]+$"


class DeletionRequestStatus(BaseModel):
    """A member's deletion request and whether it was carried out."""

    member_id: str = Field(examples=["h07"])
    requested_at: datetime
    requested_by: str = Field(description="the member's account that asked")
    note: str | None = None
    audit_id: int = Field(description="the audit record of the request")
    status: Literal["open", "erased"]
    erased_at: datetime | None = None
    erased_by: str | None = None
    erasure_audit_id: int | None = None


class ErasureCreate(BaseModel):
    """Carry out the erasure of a member's personal data (GDPR art. 17) as far as no legal
    duty keeps it."""

    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", examples=["h07"]
    )
    devices: list[Annotated[str, Field(min_length=1, max_length=128, pattern=DEVICE)]] = Field(
        default_factory=list,
        max_length=50,
        description="devices of the member that the site file no longer names (their raw "
        "readings are erased too); the site's own devices of the member are always included",
    )
    reason: str = Field(min_length=1, max_length=500, examples=["request of 2026-11-20"])


class RetainedData(BaseModel):
    what: str
    why: str


class ErasurePublic(BaseModel):
    member_id: str
    erased_at: datetime
    accounts_deleted: list[str]
    devices: list[str] = Field(description="devices whose raw readings were erased")
    readings_deleted: int
    retained: list[RetainedData]
    audit_id: int = Field(description="the audit record of the erasure")
