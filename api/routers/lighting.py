"""Street lighting for lighting engineers: the configuration (programs, calendars, segments,
luminaires), its versions, and why a luminaire is as bright as it is.

Lighting engineers read and change; operators read; members and auditors get 403. Every
change stores the whole resulting configuration as a new version
(:mod:`store.lighting_config`), reconfigures the running lighting service when the app has
one (``LightingService.reconfigure``), and writes an audit record with the old and the new
value (result ``applied``: the service runs it; ``stored``: it applies at the next start).

Which configuration the routes show and edit: the latest stored version when it is based on
the running site file's ``lighting:`` section (or neither has one), else the site file's
section (see :func:`store.lighting_config.effective_lighting`). Previews, backtests, savings
and failures are in :mod:`api.routers.lighting_analysis`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.acting import once
from api.audit import record_action
from api.auth import Principal, Role
from api.deps import ClockDep, IdempotencyKey, State, StoreDep, require
from api.errors import bad_field, conflict, not_found
from api.runtime import lighting_control, site_lighting
from api.schemas.lighting import (
    CalendarCreate,
    CalendarPublic,
    CalendarUpdate,
    ChangePublic,
    ConfigPublic,
    ConfigReplace,
    ConfigVersionPublic,
    LuminairePublic,
    ProgramCreate,
    ProgramPublic,
    ProgramUpdate,
    ReasonPublic,
    SegmentAssignment,
    SegmentLivePublic,
    SegmentPublic,
)
from api.state import AppState
from kernel.clock import Clock
from lighting.config import CalendarConfig, LightingConfig, ProgramConfig
from lighting.errors import LightingInputError
from lighting.program import check_program
from store import Store
from store.lighting_config import (
    EffectiveLighting,
    VersionConflict,
    effective_lighting,
    lighting_document,
    lighting_hash,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/lighting", tags=["lighting"])

LightingReader = Annotated[Principal, Depends(require(Role.LIGHTING_ENGINEER, Role.OPERATOR))]
LightingEngineer = Annotated[Principal, Depends(require(Role.LIGHTING_ENGINEER))]

NO_CONFIG = (
    "no lighting configuration: none is stored, and no running service has a site file "
    "with a lighting section"
)
Name = Annotated[str, Path(min_length=1, max_length=200)]
Id = Annotated[str, Path(min_length=1, max_length=128)]


# -- shared by the lighting routers -------------------------------------------------------------


async def current(state: AppState, store: Store) -> EffectiveLighting:
    """The configuration that applies now (404 when there is none)."""
    chosen = await effective_lighting(
        store.lighting_config, site_lighting(state.runtime), announce=False
    )
    if chosen is None:
        raise not_found(NO_CONFIG)
    return chosen


def _errors(exc: ValidationError, prefix: Sequence[str | int]) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": (*prefix, *err["loc"]), "msg": err["msg"]} for err in exc.errors()]
    )


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", ProgramConfig, CalendarConfig)


def validated(model: type[M], data: Any, prefix: Sequence[str | int]) -> M:
    """``model`` from ``data``, or a 422 whose fields start with ``prefix`` (e.g. ``config``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _errors(exc, prefix) from exc


def _dump(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(mode="json")
    return out


async def store_change(
    state: AppState,
    store: Store,
    caller: Principal,
    now_clock: Clock,
    chosen: EffectiveLighting,
    document: dict[str, Any],
    *,
    action: str,
    target: str,
    change: str,
    old_value: Any,
    new_value: Any,
    item: dict[str, Any],
) -> ChangePublic:
    """Validate the whole new document, store it as the next version, reconfigure the running
    service, audit; a 422 names the field of the resulting configuration (``config.…``)."""
    config = validated(LightingConfig, document, ("config",))
    now = now_clock.now()
    try:
        stored = await store.lighting_config.append(
            config,
            base_hash=chosen.base_hash,
            created_by=caller.username,
            change=change,
            now=now,
            expected_version=chosen.latest_version,
        )
    except VersionConflict as exc:
        raise conflict(
            f"the lighting configuration changed meanwhile ({exc.reason}); reload"
        ) from exc
    applied = False
    detail = (
        f"stored as version {stored.version}; no lighting service runs in this process, "
        "it applies when the service starts"
    )
    control = lighting_control(state.runtime)
    if control is not None:
        try:
            await control.reconfigure(config.site)
        except Exception as exc:
            log.exception("lighting: reconfiguring the service with version %d", stored.version)
            detail = (
                f"stored as version {stored.version}; the running lighting service could not "
                f"take it: {exc}"
            )
        else:
            applied = True
            detail = f"stored as version {stored.version}; the lighting service runs it"
    await record_action(
        store,
        caller,
        action,
        target,
        result="applied" if applied else "stored",
        now=now,
        old_value=old_value,
        new_value=new_value,
    )
    return ChangePublic(version=stored.version, applied=applied, detail=detail, item=item)


# -- the configuration and its versions ---------------------------------------------------------


@router.get("/config", response_model=ConfigPublic, summary="The lighting configuration in force")
async def get_config(_caller: LightingReader, store: StoreDep, state: State) -> ConfigPublic:
    chosen = await current(state, store)
    return ConfigPublic(
        source=chosen.source,
        version=chosen.version,
        base_hash=chosen.base_hash,
        site_hash=chosen.site_hash,
        document=lighting_document(chosen.config),
    )


@router.put(
    "/config",
    response_model=ChangePublic,
    summary="Replace the whole lighting configuration (audited; send an Idempotency-Key)",
    responses={409: {"description": "changed meanwhile, or Idempotency-Key reused"}},
)
async def replace_config(
    body: ConfigReplace,
    caller: LightingEngineer,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
) -> object:
    new = validated(LightingConfig, body.document, ("body", "document"))
    for i, program in enumerate(new.programs):
        await check_over_a_year(new, program, clock.now().date(), f"body.document.programs.{i}")

    async def act() -> tuple[int, ChangePublic]:
        chosen = await effective_lighting(
            store.lighting_config, site_lighting(state.runtime), announce=False
        )
        if chosen is None:  # the first configuration: based on the site file's (none)
            site = site_lighting(state.runtime)
            latest = await store.lighting_config.latest_version() or 0
            chosen = EffectiveLighting(new, None, lighting_hash(site), lighting_hash(site), latest)
            old: Any = None
        else:
            old = {"version": chosen.version, "hash": lighting_hash(chosen.config)}
        out = await store_change(
            state,
            store,
            caller,
            clock,
            chosen,
            lighting_document(new),
            action="lighting.config.replace",
            target="lighting:config",
            change=body.change,
            old_value=old,
            new_value={"hash": lighting_hash(new), "change": body.change},
            item={"hash": lighting_hash(new)},
        )
        return 200, out

    return await once(state, caller, request, key, act)


@router.get(
    "/config/versions",
    response_model=list[ConfigVersionPublic],
    summary="Stored versions of the lighting configuration, newest first",
)
async def config_versions(
    _caller: LightingReader,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ConfigVersionPublic]:
    return [
        ConfigVersionPublic(
            version=v.version,
            created_at=v.created_at,
            created_by=v.created_by,
            change=v.change,
            base_hash=v.base_hash,
        )
        for v in await store.lighting_config.history(limit)
    ]


# -- programs -----------------------------------------------------------------------------------


async def check_over_a_year(
    config: LightingConfig, program: ProgramConfig, today: date, field: str = "body.steps"
) -> None:
    """Resolve the program for every night of the coming year at every place of the site (an
    order of steps can hold in winter and break in May); a 422 names the step."""
    places = {
        (s.latitude_deg, s.longitude_deg, s.timezone): s
        for s in config.site.index.segments.values()
    }
    for seg in places.values():
        try:
            await asyncio.to_thread(check_program, program.program, seg.place, today)
        except LightingInputError as exc:
            raise bad_field(field, f"{exc.field}: {exc.reason}") from exc
        except (ValueError, ArithmeticError) as exc:  # e.g. an offset beyond the calendar
            raise bad_field(field, f"cannot be resolved: {exc}") from exc


def _program_public(config: LightingConfig, program: ProgramConfig) -> ProgramPublic:
    users = [
        c.name
        for c in config.calendars
        if c.default_program == program.name or any(r.program == program.name for r in c.rules)
    ]
    return ProgramPublic(name=program.name, steps=list(program.steps), calendars=users)


def _find(items: Sequence[T], name: str) -> int | None:
    return next((i for i, item in enumerate(items) if item.name == name), None)


@router.get("/programs", response_model=list[ProgramPublic], summary="Dimming programs")
async def list_programs(
    _caller: LightingReader, store: StoreDep, state: State
) -> list[ProgramPublic]:
    config = (await current(state, store)).config
    return [_program_public(config, p) for p in config.programs]


@router.get(
    "/programs/{program_name}",
    response_model=ProgramPublic,
    summary="One program",
    responses={404: {"description": "no such program"}},
)
async def get_program(
    program_name: Name, _caller: LightingReader, store: StoreDep, state: State
) -> ProgramPublic:
    config = (await current(state, store)).config
    i = _find(config.programs, program_name)
    if i is None:
        raise not_found(f"no program {program_name!r}")
    return _program_public(config, config.programs[i])


@router.post(
    "/programs",
    response_model=ChangePublic,
    status_code=201,
    summary="Create a program (audited; send an Idempotency-Key)",
    responses={409: {"description": "the name is taken, or the configuration changed"}},
)
async def create_program(
    body: ProgramCreate,
    caller: LightingEngineer,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
) -> object:
    async def act() -> tuple[int, ChangePublic]:
        chosen = await current(state, store)
        if _find(chosen.config.programs, body.name) is not None:
            raise conflict(f"a program {body.name!r} exists already; edit it with PUT")
        await check_over_a_year(chosen.config, body, clock.now().date())
        program = _dump(body)
        document = lighting_document(chosen.config)
        document["programs"].append(program)
        out = await store_change(
            state,
            store,
            caller,
            clock,
            chosen,
            document,
            action="lighting.program.create",
            target=f"program:{body.name}",
            change=f"program {body.name!r} created",
            old_value=None,
            new_value=program,
            item=program,
        )
        return 201, out

    return await once(state, caller, request, key, act)


@router.put(
    "/programs/{program_name}",
    response_model=ChangePublic,
    summary="Change a program's steps (audited; send an Idempotency-Key)",
    responses={404: {"description": "no such program"}, 409: {"description": "changed meanwhile"}},
)
async def update_program(
    program_name: Name,
    body: ProgramUpdate,
    caller: LightingEngineer,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
) -> object:
    edited = validated(
        ProgramConfig, {"name": program_name, "steps": [_dump(s) for s in body.steps]}, ("body",)
    )
    program = _dump(edited)

    async def act() -> tuple[int, ChangePublic]:
        chosen = await current(state, store)
        i = _find(chosen.config.programs, program_name)
        if i is None:
            raise not_found(f"no program {program_name!r}")
        await check_over_a_year(chosen.config, edited, clock.now().date())
        document = lighting_document(chosen.config)
        old = document["programs"][i]
        document["programs"][i] = program
        out = await store_change(
            state,
            store,
            caller,
            clock,
            chosen,
            document,
            action="lighting.program.update",
            target=f"program:{program_name}",
            change=f"program {program_name!r} changed",
            old_value=old,
            new_value=program,
            item=program,
        )
        return 200, out

    return await once(state, caller, request, key, act)


# -- calendars ----------------------------------------------------------------------------------


def _calendar_public(config: LightingConfig, cal: CalendarConfig) -> CalendarPublic:
    return CalendarPublic(
        name=cal.name,
        default_program=cal.default_program,
        country=cal.country,
        state=cal.state,
        rules=[_dump(r) for r in cal.rules],
        segments=[s.id for s in config.segments if s.calendar == cal.name],
    )


@router.get("/calendars", response_model=list[CalendarPublic], summary="Calendars")
async def list_calendars(
    _caller: LightingReader, store: StoreDep, state: State
) -> list[CalendarPublic]:
    config = (await current(state, store)).config
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
    config = (await current(state, store)).config
    i = _find(config.calendars, calendar_name)
    if i is None:
        raise not_found(f"no calendar {calendar_name!r}")
    return _calendar_public(config, config.calendars[i])


@router.post(
    "/calendars",
    response_model=ChangePublic,
    status_code=201,
    summary="Create a calendar (audited; send an Idempotency-Key)",
    responses={409: {"description": "the name is taken, or the configuration changed"}},
)
async def create_calendar(
    body: CalendarCreate,
    caller: LightingEngineer,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
) -> object:
    async def act() -> tuple[int, ChangePublic]:
        chosen = await current(state, store)
        if _find(chosen.config.calendars, body.name) is not None:
            raise conflict(f"a calendar {body.name!r} exists already; edit it with PUT")
        calendar = _dump(body)
        document = lighting_document(chosen.config)
        document["calendars"].append(calendar)
        out = await store_change(
            state,
            store,
            caller,
            clock,
            chosen,
            document,
            action="lighting.calendar.create",
            target=f"calendar:{body.name}",
            change=f"calendar {body.name!r} created",
            old_value=None,
            new_value=calendar,
            item=calendar,
        )
        return 201, out

    return await once(state, caller, request, key, act)


@router.put(
    "/calendars/{calendar_name}",
    response_model=ChangePublic,
    summary="Change a calendar (audited; send an Idempotency-Key)",
    responses={404: {"description": "no such calendar"}, 409: {"description": "changed meanwhile"}},
)
async def update_calendar(
    calendar_name: Name,
    body: CalendarUpdate,
    caller: LightingEngineer,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
) -> object:
    calendar = _dump(validated(CalendarConfig, {"name": calendar_name, **_dump(body)}, ("body",)))

    async def act() -> tuple[int, ChangePublic]:
        chosen = await current(state, store)
        i = _find(chosen.config.calendars, calendar_name)
        if i is None:
            raise not_found(f"no calendar {calendar_name!r}")
        document = lighting_document(chosen.config)
        old = document["calendars"][i]
        document["calendars"][i] = calendar
        out = await store_change(
            state,
            store,
            caller,
            clock,
            chosen,
            document,
            action="lighting.calendar.update",
            target=f"calendar:{calendar_name}",
            change=f"calendar {calendar_name!r} changed",
            old_value=old,
            new_value=calendar,
            item=calendar,
        )
        return 200, out

    return await once(state, caller, request, key, act)


# -- segments and luminaires --------------------------------------------------------------------


def _segment_public(state: AppState, config: LightingConfig, segment_id: str) -> SegmentPublic:
    seg = next(s for s in config.segments if s.id == segment_id)
    control = lighting_control(state.runtime)
    live = None
    decision = control.segment_decisions.get(segment_id) if control is not None else None
    if decision is not None:
        live = SegmentLivePublic(
            program=decision.program,
            step=decision.step,
            program_pct=decision.program_pct,
            lighting_class=decision.lighting_class,
            level_pct=decision.level_pct,
            reasons=list(decision.reasons),
        )
    return SegmentPublic(
        id=seg.id,
        calendar=seg.calendar,
        design_class=seg.design_class,
        lower_classes=list(seg.lower_classes),
        latitude_deg=seg.latitude_deg,
        longitude_deg=seg.longitude_deg,
        timezone=seg.timezone,
        traffic_adaptive=seg.traffic is not None,
        presence=seg.presence is not None,
        luminaires=[lum.luminaire_id for lum in config.site.index.by_segment.get(seg.id, ())],
        live=live,
    )


@router.get("/segments", response_model=list[SegmentPublic], summary="Segments (street sections)")
async def list_segments(
    _caller: LightingReader, store: StoreDep, state: State
) -> list[SegmentPublic]:
    config = (await current(state, store)).config
    return [_segment_public(state, config, s.id) for s in config.segments]


@router.get(
    "/segments/{segment_id}",
    response_model=SegmentPublic,
    summary="One segment, its luminaires and the running service's decision",
    responses={404: {"description": "no such segment"}},
)
async def get_segment(
    segment_id: Id, _caller: LightingReader, store: StoreDep, state: State
) -> SegmentPublic:
    config = (await current(state, store)).config
    if segment_id not in config.site.index.segments:
        raise not_found(f"no segment {segment_id!r}")
    return _segment_public(state, config, segment_id)


@router.put(
    "/segments/{segment_id}/assignment",
    response_model=ChangePublic,
    summary="Assign a calendar, or one program for every night, to a segment (audited)",
    responses={404: {"description": "no such segment"}, 409: {"description": "changed meanwhile"}},
)
async def assign_segment(
    segment_id: Id,
    body: SegmentAssignment,
    caller: LightingEngineer,
    store: StoreDep,
    clock: ClockDep,
    state: State,
    request: Request,
    key: IdempotencyKey = None,
) -> object:
    async def act() -> tuple[int, ChangePublic]:
        chosen = await current(state, store)
        config = chosen.config
        if segment_id not in config.site.index.segments:
            raise not_found(f"no segment {segment_id!r}")
        document = lighting_document(config)
        segment = next(s for s in document["segments"] if s["id"] == segment_id)
        old = {"calendar": segment["calendar"]}
        if body.calendar is not None:
            if _find(config.calendars, body.calendar) is None:
                raise bad_field("body.calendar", f"unknown calendar {body.calendar!r}")
            calendar_name = body.calendar
            new: dict[str, Any] = {"calendar": calendar_name}
        else:
            assert body.program is not None
            if _find(config.programs, body.program) is None:
                raise bad_field("body.program", f"unknown program {body.program!r}")
            calendar_name = f"only {body.program}"
            if _find(config.calendars, calendar_name) is None:
                previous = config.calendars[_find(config.calendars, segment["calendar"]) or 0]
                document["calendars"].append(
                    {
                        "name": calendar_name,
                        "default_program": body.program,
                        "country": previous.country,
                        "state": previous.state,
                        "rules": [],
                    }
                )
            new = {"calendar": calendar_name, "program": body.program}
        segment["calendar"] = calendar_name
        out = await store_change(
            state,
            store,
            caller,
            clock,
            chosen,
            document,
            action="lighting.segment.assign",
            target=f"segment:{segment_id}",
            change=f"segment {segment_id!r} follows calendar {calendar_name!r}",
            old_value=old,
            new_value=new,
            item={"segment": segment_id, **new},
        )
        return 200, out

    return await once(state, caller, request, key, act)


def _luminaire_public(state: AppState, config: LightingConfig, index: int) -> LuminairePublic:
    lum = config.luminaires[index]
    control = lighting_control(state.runtime)
    decision = control.decisions.get(lum.id) if control is not None else None
    return LuminairePublic(
        id=lum.id,
        segment=lum.segment,
        street=lum.street,
        pole=lum.pole,
        rated_power_w=lum.rated_power_w,
        standby_power_w=lum.standby_power_w,
        driver_curve=lum.driver_curve,
        level_pct=None if decision is None else decision.level_pct,
        reason=None if decision is None else decision.reason_text,
    )


@router.get("/luminaires", response_model=list[LuminairePublic], summary="Luminaires")
async def list_luminaires(
    _caller: LightingReader,
    store: StoreDep,
    state: State,
    segment_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> list[LuminairePublic]:
    config = (await current(state, store)).config
    if segment_id is not None and segment_id not in config.site.index.segments:
        raise not_found(f"no segment {segment_id!r}")
    return [
        _luminaire_public(state, config, i)
        for i, lum in enumerate(config.luminaires)
        if segment_id is None or lum.segment == segment_id
    ]


def _luminaire_index(config: LightingConfig, luminaire_id: str) -> int:
    i = next((k for k, lum in enumerate(config.luminaires) if lum.id == luminaire_id), None)
    if i is None:
        raise not_found(f"no luminaire {luminaire_id!r}")
    return i


@router.get(
    "/luminaires/{luminaire_id}",
    response_model=LuminairePublic,
    summary="One luminaire and its current level",
    responses={404: {"description": "no such luminaire"}},
)
async def get_luminaire(
    luminaire_id: Id, _caller: LightingReader, store: StoreDep, state: State
) -> LuminairePublic:
    config = (await current(state, store)).config
    return _luminaire_public(state, config, _luminaire_index(config, luminaire_id))


@router.get(
    "/luminaires/{luminaire_id}/reason",
    response_model=ReasonPublic,
    summary="Why the luminaire is as bright as it is now (the reason chain)",
    responses={
        404: {"description": "no such luminaire, or no lighting service runs in this process"},
        503: {"description": "the service has not decided this luminaire yet"},
    },
)
async def luminaire_reason(
    luminaire_id: Id, _caller: LightingReader, store: StoreDep, state: State
) -> ReasonPublic:
    control = lighting_control(state.runtime)
    config = (await current(state, store)).config
    _luminaire_index(config, luminaire_id)
    if control is None:
        raise not_found(
            "no live decisions: no lighting service runs in this process (the API serves "
            "from the store alone, or the site has no lighting)"
        )
    decision = control.decisions.get(luminaire_id)
    if decision is None:
        raise HTTPException(
            503,
            f"the lighting service has not decided {luminaire_id!r} yet; try again shortly",
            headers={"Retry-After": "10"},
        )
    return ReasonPublic(
        luminaire_id=decision.luminaire_id,
        segment_id=decision.segment_id,
        level_pct=decision.level_pct,
        ramp_s=decision.ramp_s,
        base_pct=decision.base_pct,
        overridden=decision.overridden,
        reasons=list(decision.reasons),
        reason_text=decision.reason_text,
    )
