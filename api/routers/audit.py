"""The audit trail: read it page by page, verify its keyed hash chain, export its head, and
check the chain against a head exported earlier (auditors, operators).

An auditor keeps ``GET /audit/head`` (count and newest hash) somewhere the service cannot
write, and later asks ``GET /audit/verify?count=…&head_hash=…``: an edited record, a chain
recomputed without the key and a truncated tail each fail, with the reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ROW_ID_MAX, Auditing, State, StoreDep
from api.errors import bad_field, conflict
from api.schemas.audit import (
    AuditHeadPublic,
    AuditPagePublic,
    AuditRecordPublic,
    ChainReportPublic,
)
from store.audit import AuditKey, ChainHead, ChainReport

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


def report_public(report: ChainReport, key: AuditKey) -> ChainReportPublic:
    return ChainReportPublic(
        ok=report.ok,
        checked=report.checked,
        head_hash=report.head_hash,
        bad_id=report.bad_id,
        reason=report.reason,
        unkeyed=report.unkeyed,
        key_id=key.key_id,
    )


@router.get(
    "/verify",
    response_model=ChainReportPublic,
    summary="Walk the whole chain (against an exported head when given): an edited, removed, "
    "reordered or recomputed record, or a truncated tail, is reported",
)
async def verify(
    _caller: Auditing,
    store: StoreDep,
    state: State,
    count: Annotated[
        int | None, Query(ge=1, le=ROW_ID_MAX, description="exported head: record count")
    ] = None,
    head_hash: Annotated[
        str | None,
        Query(pattern="^[0-9a-f]{64}$", description="exported head: hash of the newest record"),
    ] = None,
) -> ChainReportPublic:
    if (count is None) != (head_hash is None):
        raise bad_field("query.head_hash", "count and head_hash go together")
    head = None if count is None or head_hash is None else ChainHead(count, head_hash)
    key = state.audit_key
    return report_public(await store.audit.verify(key, head), key)


@router.get(
    "/head",
    response_model=AuditHeadPublic,
    summary="The head to export: record count and newest hash (409 if the chain fails)",
    responses={409: {"description": "the chain does not verify: nothing to export"}},
)
async def head(_caller: Auditing, store: StoreDep, state: State) -> AuditHeadPublic:
    key = state.audit_key
    report = await store.audit.verify(key)
    if not report.ok:
        raise conflict(f"the audit chain does not verify: {report.reason}")
    return AuditHeadPublic(
        count=report.checked,
        head_hash=report.head_hash,
        head=str(report.head),
        key_id=key.key_id,
        unkeyed=report.unkeyed,
    )
