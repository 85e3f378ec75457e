"""Calendars: which program a segment runs on which night (the default program and rules);
read, create and change (stored as versions, applied, audited:
:mod:`api.routers.lighting.edits`)."""

from __future__ import annotations

from datetime import datetime

from api.acting import ActingDep
from api.deps import State, StoreDep
from api.routers.lighting.edits import Edit, changed, created, edit_lighting
from api.routers.lighting.shared import (
    LightingEngineer,
    LightingReader,
    Name,
    current,
    dump,
    lighting_router,
    named,
    validated,
)
from api.schemas.lighting import CalendarCreate, CalendarPublic, CalendarUpdate, ChangePublic
from lighting.config import CalendarConfig, LightingConfig
from store.lighting_config import EffectiveLighting

router = lighting_router()


def _calendar_public(config: LightingConfig, cal: CalendarConfig) -> CalendarPublic:
    return CalendarPublic(
        name=cal.name,
        default_program=cal.default_program,
        country=cal.country,
        state=cal.state,
        rules=[dump(r) for r in cal.rules],
        segments=[s.id for s in config.segments if s.calendar == cal.name],
    )


@router.get("/calendars", response_model=list[CalendarPublic], summary="Calendars")
async def list_calendars(
    _caller: LightingReader, store: StoreDep, state: State
) -> list[CalendarPublic]:
    config = (await current(state.runtime, store)).config
    return [_calendar_public(config, c) for c in config.calendars]


@router.get(
    "/calendars/{calendar_name}",
    response_model=CalendarPublic,
    summary="One calendar",
    responses={404: {"description": "no such calendar"}},
)
async def get_calendar(
    calendar_name: Name, _caller: LightingReader, store: StoreDep, state: State
) -> CalendarPublic:
    config = (await current(state.runtime, store)).config
    return _calendar_public(config, named(config.calendars, calendar_name, "calendar"))


@router.post(
    "/calendars",
    response_model=ChangePublic,
    status_code=201,
    summary="Create a calendar (audited; send an Idempotency-Key)",
    responses={409: {"description": "the name is taken, or the configuration changed"}},
)
async def create_calendar(
    body: CalendarCreate, caller: LightingEngineer, acting: ActingDep
) -> object:
    async def make(chosen: EffectiveLighting, _now: datetime) -> Edit:
        return created(chosen, "calendars", "calendar", dump(body))

    return await edit_lighting(caller, acting, 201, make)


@router.put(
    "/calendars/{calendar_name}",
    response_model=ChangePublic,
    summary="Change a calendar (audited; send an Idempotency-Key)",
    responses={404: {"description": "no such calendar"}, 409: {"description": "changed meanwhile"}},
)
async def update_calendar(
    calendar_name: Name, body: CalendarUpdate, caller: LightingEngineer, acting: ActingDep
) -> object:
    calendar = dump(validated(CalendarConfig, {"name": calendar_name, **dump(body)}, ("body",)))

    async def make(chosen: EffectiveLighting, _now: datetime) -> Edit:
        return changed(chosen, "calendars", "calendar", calendar)

    return await edit_lighting(caller, acting, 200, make)
