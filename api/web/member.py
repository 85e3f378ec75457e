"""The member's page: today per quarter-hour and the month per day of the own balance, and the
API's CSV export of it (members only, their own data only)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Role
from api.periods import period_query
from api.routers.exports import balances_csv
from api.web import member_views as views
from api.web.render import guard, render, state_of, tz_of
from vpp.settlement.balances import Resolution

router = APIRouter(include_in_schema=False)


@router.get("/member", response_model=None)
async def member_page(request: Request) -> Response:
    who = await guard(request, Role.MEMBER)
    if isinstance(who, Response):
        return who
    state = state_of(request)
    assert state.store is not None
    assert who.member_id is not None
    view = await views.member_view(state.store, who.member_id, state.clock.now(), tz_of(state))
    chart = {"times": view.qh_times, "series": view.qh_series, "source": view.qh_source}
    return render(request, "member.html", who, view=view, chart=chart)


@router.get("/member/balances.csv", response_model=None)
async def member_csv(
    request: Request,
    resolution: Resolution = Resolution.DAY,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    """The API's CSV export (``/api/v1/exports/balances.csv``) of the member's own balances."""
    who = await guard(request, Role.MEMBER)
    if isinstance(who, Response):
        return who
    state = state_of(request)
    assert state.store is not None
    period = await period_query(state, resolution, start, end)
    return await balances_csv(who, state.store, period, None)
