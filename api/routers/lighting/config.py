"""The lighting configuration as a whole: the one in force, its replacement, its versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from api.acting import ActingDep
from api.deps import State, StoreDep
from api.routers.lighting.edits import Edit, check_over_a_year, store_change
from api.routers.lighting.shared import (
    LightingEngineer,
    LightingReader,
    configured,
    current,
    lighting_router,
    validated,
)
from api.runtime import site_lighting
from api.schemas.lighting import ChangePublic, ConfigPublic, ConfigReplace, ConfigVersionPublic
from lighting.config import LightingConfig
from store.lighting_config import EffectiveLighting, lighting_document, lighting_hash

router = lighting_router()


@router.get("/config", response_model=ConfigPublic, summary="The lighting configuration in force")
async def get_config(_caller: LightingReader, store: StoreDep, state: State) -> ConfigPublic:
    chosen = await current(state.runtime, store)
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
    body: ConfigReplace, caller: LightingEngineer, acting: ActingDep
) -> object:
    new = validated(LightingConfig, body.document, ("body", "document"))
    today = acting.clock.now().date()
    for i, program in enumerate(new.programs):
        await check_over_a_year(new, program, today, f"body.document.programs.{i}")
    runtime = acting.state.runtime

    async def act(now: datetime) -> tuple[int, ChangePublic]:
        chosen = await configured(runtime, acting.store)
        old: Any = None
        if chosen is None:  # the first configuration: based on the site file's (none)
            site = lighting_hash(site_lighting(runtime))
            latest = await acting.store.lighting_config.latest_version() or 0
            chosen = EffectiveLighting(new, None, site, site, latest)
        else:
            old = {"version": chosen.version, "hash": lighting_hash(chosen.config)}
        edit = Edit(
            lighting_document(new),
            action="lighting.config.replace",
            target="lighting:config",
            change=body.change,
            old_value=old,
            new_value={"hash": lighting_hash(new), "change": body.change},
            item={"hash": lighting_hash(new)},
        )
        return 200, await store_change(acting, caller, chosen, edit, now)

    return await acting.once(caller, act)


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
