"""The audit trail as read by auditors and operators."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, JsonValue


class AuditRecordPublic(BaseModel):
    id: int
    ts: datetime
    actor: str
    role: str
    action: str = Field(examples=["command.override"])
    target: str
    result: str
    old_value: JsonValue = None
    new_value: JsonValue = None
    command_id: str | None = None
    prev_hash: str
    hash: str


class AuditPagePublic(BaseModel):
    records: list[AuditRecordPublic]
    next_after_id: int | None = Field(description="pass as after_id for the next page")


class ChainReportPublic(BaseModel):
    ok: bool
    checked: int = Field(description="records that verified before the first problem")
    head_hash: str = Field(description="hash of the newest verified record; publish it")
    bad_id: int | None = None
    reason: str | None = None
    unkeyed: int = Field(
        default=0,
        description="records written before the audit key (plain SHA-256), sealed by the "
        "first keyed record: protected from the seal on, not before",
    )
    key_id: str = Field(description="names the key the chain was checked with (not the key)")


class AuditHeadPublic(BaseModel):
    count: int = Field(description="records in the chain")
    head_hash: str = Field(description="HMAC of the newest record")
    head: str = Field(description="COUNT:HASH, as `waldstadt audit verify --head` takes it")
    key_id: str = Field(description="names the key of the chain (not the key)")
    unkeyed: int = Field(description="records written before the key (see /audit/verify)")
