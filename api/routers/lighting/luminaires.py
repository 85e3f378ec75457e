"""Luminaires: the inventory, each one's current level, and why it is as bright as it is (the
running lighting's reason chain)."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query

from api.deps import State, StoreDep
from api.errors import not_found
from api.routers.lighting.shared import Id, LightingReader, current, lighting_router
from api.runtime import LightingControl, lighting_control
from api.schemas.lighting import LuminairePublic, ReasonPublic
from lighting.config import LightingConfig, LuminaireConfig

router = lighting_router()

NO_SERVICE = (
    "no live decisions: no lighting service runs in this process (the API serves "
    "from the store alone, or the site has no lighting)"
)


def _luminaire_public(control: LightingControl | None, lum: LuminaireConfig) -> LuminairePublic:
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


def _luminaire(config: LightingConfig, luminaire_id: str) -> LuminaireConfig:
    lum = next((lum for lum in config.luminaires if lum.id == luminaire_id), None)
    if lum is None:
        raise not_found(f"no luminaire {luminaire_id!r}")
    return lum


@router.get("/luminaires", response_model=list[LuminairePublic], summary="Luminaires")
async def list_luminaires(
    _caller: LightingReader,
    store: StoreDep,
    state: State,
    segment_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> list[LuminairePublic]:
    config = (await current(state.runtime, store)).config
    if segment_id is not None and segment_id not in config.site.index.segments:
        raise not_found(f"no segment {segment_id!r}")
    control = lighting_control(state.runtime)
    return [
        _luminaire_public(control, lum)
        for lum in config.luminaires
        if segment_id is None or lum.segment == segment_id
    ]


@router.get(
    "/luminaires/{luminaire_id}",
    response_model=LuminairePublic,
    summary="One luminaire and its current level",
    responses={404: {"description": "no such luminaire"}},
)
async def get_luminaire(
    luminaire_id: Id, _caller: LightingReader, store: StoreDep, state: State
) -> LuminairePublic:
    config = (await current(state.runtime, store)).config
    return _luminaire_public(lighting_control(state.runtime), _luminaire(config, luminaire_id))


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
    _luminaire((await current(state.runtime, store)).config, luminaire_id)
    if control is None:
        raise not_found(NO_SERVICE)
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
