"""Dispatch plans for operators: the current one, past ones, their status and the soft
constraints they had to violate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ROW_ID_MAX, ClockDep, Operator, StoreDep
from api.errors import bad_field, not_found
from api.periods import Range
from api.routers.members import ID_PATTERN
from api.schemas.operations import (
    PlanListPublic,
    PlanPublic,
    PlanSummaryPublic,
    ViolationPublic,
)
from store import Store
from store.plans import StoredPlan

router = APIRouter(prefix="/api/v1/plans", tags=["operations"])

CommunityQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        pattern=ID_PATTERN,
        description="default: the only community with plans",
    ),
]


async def which_community(store: Store, community_id: str | None) -> str:
    if community_id is not None:
        return community_id
    known = await store.plans.communities()
    if len(known) == 1:
        return known[0]
    if not known:
        raise not_found("no plans stored yet")
    raise bad_field("query.community_id", f"required: plans exist for {', '.join(known)}")


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def summary(plan: StoredPlan) -> dict[str, Any]:
    """The plan's headline, read defensively from the stored document (its producer owns the
    format; a field it lacks is shown as null, never guessed)."""
    p = plan.payload
    violations = [
        ViolationPublic(
            constraint=str(v.get("constraint", "")),
            amount_wh=v.get("amount_wh"),
            member_id=v.get("member_id"),
            asset_id=v.get("asset_id"),
            qh=v.get("qh"),
        )
        for v in _list(p.get("violations"))
        if isinstance(v, dict)
    ]
    return {
        "id": plan.id,
        "community_id": plan.community_id,
        "interval_start": plan.interval_start,
        "created_at": plan.created_at,
        "created_by": plan.created_by,
        "status": p.get("status"),
        "objective_eur": p.get("objective_eur"),
        "quarter_hours": p.get("n_qh"),
        "violations": violations,
        "alarms": [a for a in _list(p.get("alarms")) if isinstance(a, dict)],
        "notes": [str(n) for n in _list(p.get("notes"))],
    }


@router.get("", response_model=PlanListPublic, summary="Plans starting in a time range")
async def list_plans(
    _caller: Operator, store: StoreDep, window: Range, community_id: CommunityQuery = None
) -> PlanListPublic:
    community = await which_community(store, community_id)
    plans = await store.plans.between(community, window.start, window.end)
    return PlanListPublic(
        community_id=community, plans=[PlanSummaryPublic(**summary(p)) for p in plans]
    )


@router.get(
    "/current",
    response_model=PlanPublic,
    summary="The plan in force now (the newest that started at or before now)",
    responses={404: {"description": "no plan yet"}},
)
async def current_plan(
    _caller: Operator, store: StoreDep, clock: ClockDep, community_id: CommunityQuery = None
) -> PlanPublic:
    community = await which_community(store, community_id)
    plan = await store.plans.latest(community, clock.now())
    if plan is None:
        raise not_found("no plan yet")
    return PlanPublic(**summary(plan), payload=plan.payload)


@router.get(
    "/{plan_id}",
    response_model=PlanPublic,
    summary="One plan with its schedules",
    responses={404: {"description": "no such plan"}},
)
async def get_plan(
    plan_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], _caller: Operator, store: StoreDep
) -> PlanPublic:
    plan = await store.plans.by_id(plan_id)
    if plan is None:
        raise not_found("no such plan")
    return PlanPublic(**summary(plan), payload=plan.payload)
