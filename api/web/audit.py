"""The audit page: the audit log newest first, 50 records a page, and the verification of its
hash chain (auditors and operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import Role
from api.deps import ROW_ID_MAX
from api.web.render import guard, render, state_of

router = APIRouter(include_in_schema=False)

#: Audit records on one page.
PAGE_SIZE = 50


@router.get("/audit", response_model=None)
async def audit_page(
    request: Request, before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None
) -> Response:
    who = await guard(request, Role.AUDITOR, Role.OPERATOR)
    if isinstance(who, Response):
        return who
    state = state_of(request)
    assert state.store is not None
    report = await state.store.audit.verify(state.audit_key)
    last = (before_id - 1) if before_id is not None else report.checked
    first_after = max(0, last - PAGE_SIZE)
    records = await state.store.audit.records(first_after, PAGE_SIZE)
    records = [r for r in records if r.id <= last]
    records.reverse()
    return render(
        request,
        "audit.html",
        who,
        report=report,
        key_id=state.audit_key.key_id,
        records=records,
        older=first_after + 1 if first_after > 0 else None,
    )
