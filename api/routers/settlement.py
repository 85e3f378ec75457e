"""Settlement runs for operators: every version of every period, and one run's statements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ROW_ID_MAX, Operator, StoreDep
from api.errors import not_found
from api.periods import MonthRange
from api.routers.members import ID_PATTERN, statement_figures
from api.schemas.operations import (
    MemberStatementPublic,
    SettlementRunDetailPublic,
    SettlementRunPublic,
)
from store.settlement_reads import RunRow

router = APIRouter(prefix="/api/v1/settlement", tags=["operations"])


def public(run: RunRow) -> SettlementRunPublic:
    return SettlementRunPublic(
        id=run.id,
        community_id=run.community_id,
        period_start=run.period_start,
        period_end=run.period_end,
        version=run.version,
        current=run.current,
        created_at=run.created_at,
        reason=run.reason,
        members=run.members,
    )


@router.get(
    "/runs",
    response_model=list[SettlementRunPublic],
    summary="Settlement runs (every version) with periods overlapping a time range (default: "
    "the last 31 days), newest first",
)
async def list_runs(
    _caller: Operator,
    store: StoreDep,
    window: MonthRange,
    community_id: Annotated[
        str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)
    ] = None,
) -> list[SettlementRunPublic]:
    runs = await store.settlement_reads.runs_between(window.start, window.end, community_id)
    return [public(r) for r in runs]


@router.get(
    "/runs/{run_id}",
    response_model=SettlementRunDetailPublic,
    summary="One settlement run with every member's statement",
    responses={404: {"description": "no such run"}},
)
async def get_run(
    run_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], _caller: Operator, store: StoreDep
) -> SettlementRunDetailPublic:
    found = await store.settlement_reads.run(run_id)
    if found is None:
        raise not_found("no such settlement run")
    run, statements = found
    return SettlementRunDetailPublic(
        **public(run).model_dump(),
        statements=[
            MemberStatementPublic(member_id=s.member_id, figures=statement_figures(s))
            for s in statements
        ],
    )
