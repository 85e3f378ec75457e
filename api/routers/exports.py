"""CSV exports: a member's balances as a spreadsheet (comma separated, UTF-8).

The member is a query parameter (a member account's default is its own member; another id is
a 404, as everywhere). Columns: the row's start and end (UTC, ISO 8601), quarter-hours and
substitute quarter-hours, each meter channel in kWh, then the settled figures (empty when not
settled).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import Role
from api.balances import eur, kwh, plain
from api.deps import MemberOrOperator, StoreDep
from api.errors import bad_field
from api.periods import Period
from api.routers.members import ID_PATTERN, member_buckets, visible_member

router = APIRouter(prefix="/api/v1/exports", tags=["members"])

SETTLED_COLUMNS = (
    ("consumption_kwh", "consumption_wh"),
    ("generation_kwh", "generation_wh"),
    ("shared_received_kwh", "shared_received_wh"),
    ("shared_delivered_kwh", "shared_delivered_wh"),
    ("residual_kwh", "grid_import_wh"),
    ("surplus_kwh", "grid_export_wh"),
)


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
    channels = sorted({name for b in buckets for name in b.metered_wh})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "start",
            "end",
            "quarter_hours",
            "substitute_quarter_hours",
            *channels,
            *(c for c, _ in SETTLED_COLUMNS),
            "amount_eur",
            "co2_avoided_g",
        ]
    )
    for b in buckets:
        settled = (
            [kwh(b.settled_wh.get(f, 0)) for _, f in SETTLED_COLUMNS]
            + [str(eur(b.amount_eur)), plain(b.co2_g)]
            if b.settled
            else [""] * (len(SETTLED_COLUMNS) + 2)
        )
        writer.writerow(
            [
                b.start.isoformat(),
                b.end.isoformat(),
                b.quarter_hours,
                b.substitute_quarter_hours,
                *(kwh(b.metered_wh[c]) if c in b.metered_wh else "" for c in channels),
                *settled,
            ]
        )
    filename = f"waldstadt-{member_id}-{period.resolution.value}-{period.start}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
