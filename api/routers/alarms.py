"""Alarms: the active ones and the raise/clear history (operators and lighting engineers,
whose luminaire failures are alarms too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import Principal, Role
from api.deps import StoreDep, require
from api.periods import Range
from api.schemas.operations import AlarmPublic
from store.alarms import AlarmEvent

router = APIRouter(prefix="/api/v1/alarms", tags=["operations"])

AlarmReader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.LIGHTING_ENGINEER))]


def public(e: AlarmEvent) -> AlarmPublic:
    return AlarmPublic(
        id=e.id,
        ts=e.ts,
        alarm_key=e.alarm_key,
        source=e.source,
        kind=e.kind,
        severity=e.severity,
        event=e.event,
        message=e.message,
        details=e.details,
    )


@router.get("", response_model=list[AlarmPublic], summary="Active alarms, oldest first")
async def active_alarms(_caller: AlarmReader, store: StoreDep) -> list[AlarmPublic]:
    return [public(e) for e in await store.alarms.active()]


@router.get(
    "/history", response_model=list[AlarmPublic], summary="Raise and clear events, newest first"
)
async def alarm_history(_caller: AlarmReader, store: StoreDep, window: Range) -> list[AlarmPublic]:
    return [public(e) for e in await store.alarms.events_between(window.start, window.end)]
