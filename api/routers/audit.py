"""The audit trail: read it page by page and verify its hash chain (auditors, operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ROW_ID_MAX, Auditing, StoreDep
from api.schemas.audit import AuditPagePublic, AuditRecordPublic, ChainReportPublic

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/records", response_model=AuditPagePublic, summary="Audit records, oldest first")
async def records(
    _caller: Auditing,
    store: StoreDep,
    after_id: Annotated[int, Query(ge=0, le=ROW_ID_MAX, description="records after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPagePublic:
    page = await store.audit.records(after_id, limit)
    return AuditPagePublic(
        records=[
            AuditRecordPublic(
                id=r.id,
                ts=r.entry.ts,
                actor=r.entry.actor,
                role=r.entry.role,
                action=r.entry.action,
                target=r.entry.target,
                result=r.entry.result,
                old_value=r.entry.old_value,
                new_value=r.entry.new_value,
                command_id=r.entry.command_id,
                prev_hash=r.prev_hash,
                hash=r.hash,
            )
            for r in page
        ],
        next_after_id=page[-1].id if len(page) == limit else None,
    )


@router.get(
    "/verify",
    response_model=ChainReportPublic,
    summary="Walk the whole chain: an edited, removed or reordered record is reported",
)
async def verify(_caller: Auditing, store: StoreDep) -> ChainReportPublic:
    report = await store.audit.verify()
    return ChainReportPublic(
        ok=report.ok,
        checked=report.checked,
        head_hash=report.head_hash,
        bad_id=report.bad_id,
        reason=report.reason,
    )
