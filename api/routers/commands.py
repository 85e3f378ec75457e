"""Commands sent to devices, and manual overrides by operators.

An override is a command like the controller's own: an id, a target, a value and an expiry
after which the device reverts and the plan takes over again. It is stored ``pending`` in the
command journal, from which the service's writer sends it, and it is audited with the value it
replaces (the newest live command for that target, if any). Lighting engineers and members
cannot dispatch.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.acting import ActingDep
from api.audit import record_action
from api.deps import Operator, StoreDep
from api.errors import bad_field, not_found
from api.periods import Range
from api.runtime import site_of
from api.schemas.operations import CommandPublic, OverrideCreate
from kernel.commands import Command as SetpointCommand
from kernel.commands import CommandKind
from scheduler.journal import to_row
from scheduler.overrides import DEFAULT_REVERT_S, OVERRIDE_PREFIX
from store.commands import Command as StoredRow
from store.commands import StoredCommand
from store.schema import COMMAND_STATUSES

router = APIRouter(prefix="/api/v1/commands", tags=["operations"])


def public(c: StoredCommand) -> CommandPublic:
    return CommandPublic(
        command_id=c.command.command_id,
        target=c.command.target,
        value=c.command.value,
        issued_at=c.command.issued_at,
        expires_at=c.command.expires_at,
        status=c.status,
        status_changed_at=c.status_changed_at,
        detail=c.detail,
    )


def _setpoint(c: StoredRow) -> dict[str, object]:
    """What an audit record shows of the command an override replaces."""
    v = c.value if isinstance(c.value, dict) else {"value": c.value}
    return {"command_id": c.command_id, "kind": v.get("kind"), "value": v.get("value")}


@router.get("", response_model=list[CommandPublic], summary="Commands issued in a time range")
async def list_commands(
    _caller: Operator,
    store: StoreDep,
    window: Range,
    target: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(COMMAND_STATUSES) + ")$")] = None,
) -> list[CommandPublic]:
    rows = await store.commands.between(window.start, window.end, target=target, status=status)
    return [public(c) for c in rows]


@router.get(
    "/{command_id}",
    response_model=CommandPublic,
    summary="One command and its status",
    responses={404: {"description": "no such command"}},
)
async def get_command(
    command_id: Annotated[str, Path(min_length=1, max_length=128)],
    _caller: Operator,
    store: StoreDep,
) -> CommandPublic:
    stored = await store.commands.get(command_id)
    if stored is None:
        raise not_found("no such command")
    return public(stored)


@router.post(
    "/overrides",
    response_model=CommandPublic,
    status_code=201,
    summary="Override one setpoint until it expires (audited; send an Idempotency-Key)",
    responses={409: {"description": "Idempotency-Key reused for another request"}},
)
async def create_override(body: OverrideCreate, caller: Operator, acting: ActingDep) -> object:
    store = acting.store
    site = site_of(acting.state.runtime)

    async def act(now: datetime) -> tuple[int, CommandPublic]:
        if site is not None and body.target not in {d.name for d in site.devices}:
            raise bad_field("body.target", f"no device {body.target!r} in the site")
        live = await store.commands.live(now, [body.target])
        old = live[-1].command if live else None
        revert_s = site.dispatch.revert_s if site is not None else DEFAULT_REVERT_S
        command = to_row(
            SetpointCommand(
                command_id=f"{OVERRIDE_PREFIX}{uuid.uuid4().hex}",
                target=body.target,
                kind=CommandKind(body.kind),
                value=body.value,
                expires_at=now + timedelta(seconds=body.expires_in_s),
                source=f"override:{caller.username}",
                revert_s=revert_s,
            ),
            now,
        )
        _, stored = await store.commands.insert(command)
        await record_action(
            store,
            acting.state.audit_key,
            caller,
            "command.override",
            body.target,
            result="accepted",
            now=now,
            old_value=None if old is None else _setpoint(old),
            new_value={
                "kind": body.kind,
                "value": body.value,
                "expires_at": command.expires_at.isoformat(),
                "reason": body.reason,
            },
            command_id=command.command_id,
        )
        return 201, public(stored)

    return await acting.once(caller, act)
