"""Dimming programs: read, create and change (each change validated over a year, stored as a
version, applied to the running lighting and audited: :mod:`api.routers.lighting.edits`)."""

from __future__ import annotations

from datetime import datetime

from api.acting import ActingDep
from api.deps import State, StoreDep
from api.routers.lighting.edits import Edit, changed, check_over_a_year, created, edit_lighting
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
from api.schemas.lighting import ChangePublic, ProgramCreate, ProgramPublic, ProgramUpdate
from lighting.config import LightingConfig, ProgramConfig
from store.lighting_config import EffectiveLighting

router = lighting_router()


def _program_public(config: LightingConfig, program: ProgramConfig) -> ProgramPublic:
    users = [
        c.name
        for c in config.calendars
        if c.default_program == program.name or any(r.program == program.name for r in c.rules)
    ]
    return ProgramPublic(name=program.name, steps=list(program.steps), calendars=users)


@router.get("/programs", response_model=list[ProgramPublic], summary="Dimming programs")
async def list_programs(
    _caller: LightingReader, store: StoreDep, state: State
) -> list[ProgramPublic]:
    config = (await current(state.runtime, store)).config
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
    config = (await current(state.runtime, store)).config
    return _program_public(config, named(config.programs, program_name, "program"))


@router.post(
    "/programs",
    response_model=ChangePublic,
    status_code=201,
    summary="Create a program (audited; send an Idempotency-Key)",
    responses={409: {"description": "the name is taken, or the configuration changed"}},
)
async def create_program(
    body: ProgramCreate, caller: LightingEngineer, acting: ActingDep
) -> object:
    async def make(chosen: EffectiveLighting, now: datetime) -> Edit:
        edit = created(chosen, "programs", "program", dump(body))
        await check_over_a_year(chosen.config, body, now.date())
        return edit

    return await edit_lighting(caller, acting, 201, make)


@router.put(
    "/programs/{program_name}",
    response_model=ChangePublic,
    summary="Change a program's steps (audited; send an Idempotency-Key)",
    responses={404: {"description": "no such program"}, 409: {"description": "changed meanwhile"}},
)
async def update_program(
    program_name: Name, body: ProgramUpdate, caller: LightingEngineer, acting: ActingDep
) -> object:
    edited = validated(
        ProgramConfig, {"name": program_name, "steps": [dump(s) for s in body.steps]}, ("body",)
    )

    async def make(chosen: EffectiveLighting, now: datetime) -> Edit:
        edit = changed(chosen, "programs", "program", dump(edited))
        await check_over_a_year(chosen.config, edited, now.date())
        return edit

    return await edit_lighting(caller, acting, 200, make)
