"""Assets: every device of the site with its live state and availability (operators).

The state is the running service's newest cycle (:mod:`api.live`): a device that did not
answer is unavailable with the reason and has no readings (never zeros, never last cycle's
values); the setpoints are those the controller keeps in force, the plan's or an operator's
override. An app serving from the database alone has no live state and says so
(``service_running: false``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Operator, State
from api.errors import not_found
from api.live import assets_now
from api.schemas.operations import AssetListPublic, AssetPublic, ReadingPublic, SetpointPublic
from scheduler.assets import ROLES, AssetState

router = APIRouter(prefix="/api/v1/assets", tags=["operations"])

ID = r"^[A-Za-z0-9._:/-]+$"


def public(a: AssetState) -> AssetPublic:
    return AssetPublic(
        device=a.device,
        driver=a.driver,
        member_id=a.member_id,
        roles=list(a.roles),
        available=a.available,
        reason=a.reason,
        read_at=a.read_at,
        readings=[
            ReadingPublic(
                channel=r.channel,
                value=r.value if r.available else None,
                unit=r.unit,
                quality=r.quality.value,
                ts=r.ts,
            )
            for r in a.readings
        ],
        setpoints=[
            SetpointPublic(
                command_id=c.command_id,
                kind=c.kind.value,
                value=c.value,
                source=c.source,
                expires_at=c.expires_at,
                revert_s=c.revert_s,
            )
            for c in a.setpoints
        ],
    )


@router.get(
    "",
    response_model=AssetListPublic,
    summary="Every device of the site: availability (and why not), newest readings, setpoints",
)
async def list_assets(
    _caller: Operator,
    state: State,
    available: Annotated[
        bool | None, Query(description="only the devices that answer (true) or do not")
    ] = None,
    member_id: Annotated[
        str | None,
        Query(min_length=1, max_length=128, pattern=ID, description="only this member's"),
    ] = None,
    role: Annotated[
        str | None,
        Query(pattern="^(" + "|".join(ROLES) + ")$", description="only devices with this role"),
    ] = None,
) -> AssetListPublic:
    now = assets_now(state.runtime)
    if now is None:
        return AssetListPublic(service_running=False, at=None, total=0, available=0, assets=[])
    chosen = [
        a
        for a in now.assets
        if (available is None or a.available is available)
        and (member_id is None or a.member_id == member_id)
        and (role is None or role in a.roles)
    ]
    return AssetListPublic(
        service_running=True,
        at=now.at,
        total=len(now.assets),
        available=now.available,
        assets=[public(a) for a in chosen],
    )


@router.get(
    "/{device}",
    response_model=AssetPublic,
    summary="One device: availability (and why not), newest readings, setpoints in force",
    responses={404: {"description": "no such device (or no running service)"}},
)
async def get_asset(
    device: Annotated[str, Path(min_length=1, max_length=128, pattern=ID)],
    _caller: Operator,
    state: State,
) -> AssetPublic:
    now = assets_now(state.runtime)
    if now is None:
        raise not_found("no running service: the app knows no devices")
    for a in now.assets:
        if a.device == device:
            return public(a)
    raise not_found(f"no device {device!r} in the site")
