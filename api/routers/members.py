"""A member's own data: balances, statement versions, the personal-data export and the
deletion request.

A member account sees exactly one member (its ``member_id``). Asking for any other member id
is a 404, the same answer as for a member that does not exist, so a member cannot even learn
which ids exist. Operators (the Stadtwerk that settles) may read every member's balances and
statements; the personal-data export and the deletion request are the member's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request

from api.acting import once
from api.audit import record_action
from api.auth import Principal, Role
from api.deps import Caller, ClockDep, IdempotencyKey, MemberOrOperator, State, StoreDep
from api.errors import forbidden, not_found
from api.periods import Period as PeriodDep
from api.periods import PeriodQuery
from api.schemas.members import (
    AccountExport,
    BalanceRow,
    DeletionRequestCreate,
    DeletionRequestPublic,
    IntervalExport,
    MemberBalancesPublic,
    PersonalDataExport,
    SettledFigures,
    StatementVersionPublic,
    StatementVersionsPublic,
)
from store import Store
from store.settlement_reads import RunRow
from vpp.settlement.balances import (
    Bucket,
    Resolution,
    bucket_bounds,
    bucketise,
    kwh,
    plain,
)
from vpp.settlement.runs import Statement
from vpp.settlement.statement import round_eur

router = APIRouter(prefix="/api/v1/members", tags=["members"])

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MemberId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, examples=["h01"])]
NOT_FOUND = "no such member"


def visible_member(caller: Principal, member_id: str) -> str:
    """The member id the caller may see, or a 404 that does not tell whether it exists."""
    if caller.role is Role.MEMBER and member_id != caller.member_id:
        raise not_found(NOT_FOUND)
    return member_id


def own_member(caller: Principal, member_id: str) -> str:
    if caller.role is not Role.MEMBER:
        raise forbidden("only the member's own account may do this")
    return visible_member(caller, member_id)


def figures(
    settled_wh: dict[str, Decimal], amount_eur: Decimal, co2_g: Decimal, n: int
) -> SettledFigures:
    def k(name: str) -> str:
        return kwh(settled_wh.get(name, Decimal(0)))

    return SettledFigures(
        consumption_kwh=k("consumption_wh"),
        generation_kwh=k("generation_wh"),
        shared_received_kwh=k("shared_received_wh"),
        shared_delivered_kwh=k("shared_delivered_wh"),
        residual_kwh=k("grid_import_wh"),
        surplus_kwh=k("grid_export_wh"),
        amount_eur=str(round_eur(amount_eur)),
        co2_avoided_g=plain(co2_g),
        statements=n,
    )


def statement_figures(s: Statement) -> SettledFigures:
    return figures(
        {
            "consumption_wh": s.consumption_wh,
            "generation_wh": s.generation_wh,
            "shared_received_wh": s.shared_received_wh,
            "shared_delivered_wh": s.shared_delivered_wh,
            "grid_import_wh": s.grid_import_wh,
            "grid_export_wh": s.grid_export_wh,
        },
        s.amount_eur,
        s.co2_g,
        1,
    )


def balance_row(b: Bucket) -> BalanceRow:
    return BalanceRow(
        start=b.start,
        end=b.end,
        quarter_hours=b.quarter_hours,
        substitute_quarter_hours=b.substitute_quarter_hours,
        metered_kwh={name: kwh(v) for name, v in sorted(b.metered_wh.items())},
        settled=figures(dict(b.settled_wh), b.amount_eur, b.co2_g, b.statements)
        if b.settled
        else None,
    )


async def member_buckets(store: Store, member_id: str, period: PeriodQuery) -> list[Bucket]:
    """The member's metered and settled figures per bucket of ``period``. Quarter-hours come
    row by row; days and months from the store's day totals when they are complete for the
    period's zone (one read transaction with the statements), else summed from the intervals
    in the database (a month is ~6,000)."""
    args = (period.resolution, period.start, period.end, period.tz)
    if period.resolution is Resolution.QUARTER_HOUR:
        periods = await store.balances.settled_periods(member_id, period.start_utc, period.end_utc)
        intervals = await store.balances.intervals(member_id, period.start_utc, period.end_utc)
        return bucketise(*args, intervals, periods)
    bounds = bucket_bounds(*args)
    if not store.day_totals.is_complete(period.tz.key):
        periods = await store.balances.settled_periods(member_id, period.start_utc, period.end_utc)
        return bucketise(
            *args, (), periods, sums=await store.balances.interval_sums(member_id, bounds)
        )
    starts = [start.astimezone(period.tz).date() for start, _ in bounds]
    periods, sums = await store.balances.settled_with_day_sums(
        member_id, period.tz.key, period.start_utc, period.end_utc, starts
    )
    return bucketise(*args, (), periods, sums=sums)


def version_public(run: RunRow, s: Statement) -> StatementVersionPublic:
    return StatementVersionPublic(
        run_id=run.id,
        community_id=run.community_id,
        period_start=run.period_start,
        period_end=run.period_end,
        version=run.version,
        current=run.current,
        created_at=run.created_at,
        reason=run.reason,
        figures=statement_figures(s),
    )


@router.get(
    "/{member_id}/balances",
    response_model=MemberBalancesPublic,
    summary="A member's balances per quarter-hour, local day or local month",
    responses={404: {"description": "no such member (or not yours)"}},
)
async def balances(
    member_id: MemberId, caller: MemberOrOperator, store: StoreDep, period: PeriodDep, state: State
) -> MemberBalancesPublic:
    member_id = visible_member(caller, member_id)
    buckets = await member_buckets(store, member_id, period)
    return MemberBalancesPublic(
        member_id=member_id,
        resolution=period.resolution,
        timezone=state.settings.timezone,
        start=period.start,
        end=period.end,
        rows=[balance_row(b) for b in buckets],
    )


@router.get(
    "/{member_id}/statements",
    response_model=StatementVersionsPublic,
    summary="Every version of a member's settlement statements (restatements included)",
    responses={404: {"description": "no such member (or not yours)"}},
)
async def statements(
    member_id: MemberId, caller: MemberOrOperator, store: StoreDep, period: PeriodDep
) -> StatementVersionsPublic:
    member_id = visible_member(caller, member_id)
    rows = await store.settlement_reads.member_statement_versions(
        member_id, period.start_utc, period.end_utc
    )
    return StatementVersionsPublic(
        member_id=member_id,
        start=period.start,
        end=period.end,
        versions=[version_public(run, s) for run, s in rows],
    )


@router.get(
    "/{member_id}/personal-data",
    response_model=PersonalDataExport,
    summary="Everything stored about the member (GDPR export; the member's own account only)",
    responses={404: {"description": "no such member (or not yours)"}},
)
async def personal_data(
    member_id: MemberId, caller: Caller, store: StoreDep, clock: ClockDep
) -> PersonalDataExport:
    member_id = own_member(caller, member_id)
    now = clock.now()
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    intervals = await store.intervals.for_member(member_id, epoch, now, history=True)
    versions = await store.settlement_reads.member_statement_versions(member_id, epoch, now)
    accounts = [u for u in await store.users.all() if u.member_id == member_id]
    return PersonalDataExport(
        member_id=member_id,
        exported_at=now,
        accounts=[
            AccountExport(
                username=u.username, role=u.role, created_at=u.created_at, disabled=u.disabled
            )
            for u in accounts
        ],
        intervals=[
            IntervalExport(
                channel=s.interval.channel,
                interval_start=s.interval.interval_start,
                energy_kwh=kwh(s.interval.energy_wh),
                quality=s.interval.quality.value,
                version=s.version,
                restated=s.restated,
                recorded_at=s.recorded_at,
            )
            for s in intervals
        ],
        statements=[version_public(run, s) for run, s in versions],
    )


@router.post(
    "/{member_id}/deletion-request",
    response_model=DeletionRequestPublic,
    status_code=202,
    summary="Ask the operator to delete the member's personal data (recorded in the audit log)",
    responses={404: {"description": "no such member (or not yours)"}},
)
async def deletion_request(
    member_id: MemberId,
    caller: Caller,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
    body: Annotated[DeletionRequestCreate | None, Body()] = None,
) -> object:
    member_id = own_member(caller, member_id)

    async def act() -> tuple[int, DeletionRequestPublic]:
        now = clock.now()
        rec = await record_action(
            store,
            state.audit_key,
            caller,
            "gdpr.deletion_requested",
            f"member:{member_id}",
            result="requested",
            now=now,
            new_value={"note": body.note if body else None},
        )
        return 202, DeletionRequestPublic(
            member_id=member_id, status="requested", requested_at=now, audit_id=rec.id
        )

    return await once(state, caller, request, key, act)
