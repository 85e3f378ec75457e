"""CSV exports: a member's balances as a spreadsheet (comma separated, UTF-8).

The member is a query parameter (a member account's default is its own member; another id is
a 404, as everywhere). The rows are the member's balance view; the columns are those of
:mod:`vpp.settlement.csv_export` (units in the header, empty settled figures where not settled).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import Role
from api.deps import MemberOrOperator, StoreDep
from api.errors import bad_field
from api.periods import Period
from api.routers.members import ID_PATTERN, member_buckets, visible_member
from vpp.settlement import csv_export

router = APIRouter(prefix="/api/v1/exports", tags=["members"])


@router.get(
    "/balances.csv",
    summary="A member's balances as CSV",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}},
        404: {"description": "no such member (or not yours)"},
    },
)
async def balances_csv(
    caller: MemberOrOperator,
    store: StoreDep,
    period: Period,
    member_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            pattern=ID_PATTERN,
            description="default: the caller's own member",
        ),
    ] = None,
) -> Response:
    if member_id is None:
        if caller.role is not Role.MEMBER:
            raise bad_field("query.member_id", "required for operators")
        member_id = caller.member_id
    assert member_id is not None
    member_id = visible_member(caller, member_id)
    buckets = await member_buckets(store, member_id, period)
    filename = f"waldstadt-{member_id}-{period.resolution.value}-{period.start}.csv"
    return Response(
        csv_export.balances_csv(buckets),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
