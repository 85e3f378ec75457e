"""Community figures: only as aggregates over at least five members; and, for operators, the
communities now (the running service's newest cycle).

A member sees the communities in whose settlement they appear; an operator names any. A row
that sums fewer than :data:`MIN_MEMBERS` members shows no figures, and a community that never
reaches five members in the range is a 404: with four, a member could subtract their own
figures and learn about three neighbours. No member id appears in the answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Role
from api.deps import MemberOrOperator, Operator, State, StoreDep
from api.errors import bad_field, not_found
from api.live import community_live
from api.periods import Period
from api.routers.members import ID_PATTERN, figures
from api.schemas.members import CommunityBalancesPublic, CommunityRow
from api.schemas.operations import CommunityNowPublic
from vpp.settlement.balances import SettledPeriod, bucketise

router = APIRouter(prefix="/api/v1/community", tags=["community"])

MIN_MEMBERS = 5


@router.get(
    "/balances",
    response_model=CommunityBalancesPublic,
    summary="The community's settled totals per quarter-hour, day or month (≥ 5 members)",
    responses={404: {"description": "no such community, or fewer than five members"}},
)
async def community_balances(
    caller: MemberOrOperator,
    store: StoreDep,
    period: Period,
    state: State,
    community_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            pattern=ID_PATTERN,
            description="required for operators; a member's default is their community",
        ),
    ] = None,
) -> CommunityBalancesPublic:
    if caller.role is Role.MEMBER:
        assert caller.member_id is not None
        mine = await store.settlement_reads.member_communities(caller.member_id)
        if community_id is None:
            if not mine:
                raise not_found("no community: you have not been settled yet")
            community_id = mine[0]
        elif community_id not in mine:
            raise not_found("no such community")
    elif community_id is None:
        raise bad_field("query.community_id", "required for operators")
    rows = await store.settlement_reads.community_statements(
        community_id, period.start_utc, period.end_utc
    )
    periods = [SettledPeriod(run.period_start, run.period_end, s) for run, s in rows]
    buckets = bucketise(period.resolution, period.start, period.end, period.tz, (), periods)
    if max((len(b.members) for b in buckets), default=0) < MIN_MEMBERS:
        raise not_found(f"no aggregate: fewer than {MIN_MEMBERS} members settled in this range")
    return CommunityBalancesPublic(
        community_id=community_id,
        resolution=period.resolution,
        timezone=state.settings.timezone,
        start=period.start,
        end=period.end,
        min_members=MIN_MEMBERS,
        rows=[
            CommunityRow(
                start=b.start,
                end=b.end,
                members=len(b.members),
                settled=figures(dict(b.settled_wh), b.amount_eur, b.co2_g, b.statements)
                if len(b.members) >= MIN_MEMBERS
                else None,
            )
            for b in buckets
        ],
    )


@router.get(
    "/now",
    response_model=list[CommunityNowPublic],
    summary="Every community at the newest cycle: generation, consumption, sharing, grid, "
    "feeder headroom (kW)",
    responses={404: {"description": "no running service, or no cycle yet"}},
)
async def communities_now(_caller: Operator, state: State) -> list[CommunityNowPublic]:
    live = community_live(state.runtime)
    if live is None:
        raise not_found("no live figures: no running service, or no cycle yet")
    return [CommunityNowPublic(**vars(c)) for c in live]
