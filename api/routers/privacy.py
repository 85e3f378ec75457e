"""Members' privacy requests, for operators: the deletion requests and their erasure.

A member asks with ``POST /api/v1/members/{id}/deletion-request`` (an audit record). The
operator sees the requests here, open or carried out, and erases: the member's accounts and
the raw readings of the member's devices (those the site file names for the member, and any
the operator lists that it no longer names) are deleted; the quarter-hour intervals and the
settlement statements stay, as billing records under the operator's retention duty (GDPR
art. 17(3)(b)), and so do the audit records (the accountability record). The erasure is an
audit record itself, with what was deleted. A member who is still in a community of the
running site cannot be erased: their meter still feeds the settlement (end the membership in
the site file first).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from api.acting import ActingDep
from api.audit import record_action
from api.deps import Operator, StoreDep
from api.errors import conflict
from api.runtime import site_of
from api.schemas.privacy import DeletionRequestStatus, ErasureCreate, ErasurePublic, RetainedData
from scheduler.assets import device_roles
from scheduler.site import Site
from store import Store
from store.audit import AuditRecord

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])

REQUESTED = "gdpr.deletion_requested"
ERASED = "gdpr.erased"
RETAINED = [
    RetainedData(
        what="quarter-hour intervals and settlement statements",
        why="billing records: kept under the operator's statutory retention duty "
        "(GDPR art. 17(3)(b)); Waldstadt keeps them append-only",
    ),
    RetainedData(
        what="audit records naming the member's accounts",
        why="the accountability record of control actions and changes (append-only, hash-chained)",
    ),
]
_PAGE = 1000


async def _privacy_records(store: Store) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    after = 0
    while page := await store.audit.records(after, _PAGE):
        out.extend(r for r in page if r.entry.action in (REQUESTED, ERASED))
        after = page[-1].id
    return out


def _member_of(target: str) -> str:
    return target.removeprefix("member:")


@router.get(
    "/deletion-requests",
    response_model=list[DeletionRequestStatus],
    summary="Members' deletion requests, oldest first, open or erased",
)
async def deletion_requests(_caller: Operator, store: StoreDep) -> list[DeletionRequestStatus]:
    return await request_statuses(store)


async def request_statuses(store: Store) -> list[DeletionRequestStatus]:
    """Every deletion request from the audit log, with its erasure if there was one."""
    records = await _privacy_records(store)
    erasures: dict[str, AuditRecord] = {}
    for r in records:
        if r.entry.action == ERASED:
            erasures[_member_of(r.entry.target)] = r
    out = []
    for r in records:
        if r.entry.action != REQUESTED:
            continue
        member_id = _member_of(r.entry.target)
        done = erasures.get(member_id)
        if done is not None and done.id < r.id:
            done = None  # erased before this request: this one is open
        note = r.entry.new_value.get("note") if isinstance(r.entry.new_value, dict) else None
        out.append(
            DeletionRequestStatus(
                member_id=member_id,
                requested_at=r.entry.ts,
                requested_by=r.entry.actor,
                note=note,
                audit_id=r.id,
                status="open" if done is None else "erased",
                erased_at=None if done is None else done.entry.ts,
                erased_by=None if done is None else done.entry.actor,
                erasure_audit_id=None if done is None else done.id,
            )
        )
    return out


def _site_devices(site: Site | None, member_id: str, now: datetime) -> list[str]:
    """The member's devices in the site file (none without one); 409 while the member is in
    a community."""
    if site is None:
        return []
    for community in site.communities:
        for m in community.members:
            if m.member == member_id and (m.left is None or m.left > now):
                raise conflict(
                    f"member {member_id!r} is still in community {community.id!r}: end the "
                    "membership in the site file (members[].left) before erasing"
                )
    return [d for d, (owner, _) in device_roles(site).items() if owner == member_id]


@router.post(
    "/erasures",
    response_model=ErasurePublic,
    status_code=201,
    summary="Erase a member's accounts and raw readings (audited; send an Idempotency-Key)",
    responses={409: {"description": "still a member of a community, or the key was reused"}},
)
async def erase(body: ErasureCreate, caller: Operator, acting: ActingDep) -> object:
    store = acting.store
    site = site_of(acting.state.runtime)

    async def act(now: datetime) -> tuple[int, ErasurePublic]:
        devices = sorted({*_site_devices(site, body.member_id, now), *body.devices})
        accounts = await store.users.delete_member_accounts(body.member_id)
        readings = await store.readings.delete_devices(devices)
        rec = await record_action(
            store,
            acting.state.audit_key,
            caller,
            ERASED,
            f"member:{body.member_id}",
            result="erased",
            now=now,
            new_value={
                "reason": body.reason,
                "accounts_deleted": accounts,
                "devices": devices,
                "readings_deleted": readings,
                "retained": [r.what for r in RETAINED],
            },
        )
        return 201, ErasurePublic(
            member_id=body.member_id,
            erased_at=now,
            accounts_deleted=accounts,
            devices=devices,
            readings_deleted=readings,
            retained=RETAINED,
            audit_id=rec.id,
        )

    return await acting.once(caller, act)


__all__ = ["ERASED", "REQUESTED", "request_statuses", "router"]
