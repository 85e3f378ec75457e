"""Luminaire failures: the active alarms of the lighting (lamp failure, power out of range,
communication lost …), with each luminaire's segment."""

from __future__ import annotations

from collections import Counter

from api.deps import State, StoreDep
from api.routers.lighting.shared import LightingReader, configured, lighting_router
from api.schemas.lighting_figures import FailurePublic, FailuresPublic

router = lighting_router()


@router.get(
    "/failures",
    response_model=FailuresPublic,
    summary="Active luminaire alarms (lamp failure, power out of range, communication lost …)",
)
async def failures(_caller: LightingReader, store: StoreDep, state: State) -> FailuresPublic:
    chosen = await configured(state.runtime, store)
    luminaires = {} if chosen is None else chosen.config.site.index.luminaires
    active = [
        e
        for e in await store.alarms.active()
        if e.alarm_key.startswith("lighting:") or e.source in luminaires
    ]
    out = [
        FailurePublic(
            luminaire_id=e.source,
            segment_id=luminaires[e.source].segment_id if e.source in luminaires else None,
            kind=e.kind,
            severity=e.severity,
            since=e.ts,
            message=e.message,
            alarm_key=e.alarm_key,
        )
        for e in active
    ]
    return FailuresPublic(active=out, by_kind=dict(Counter(f.kind for f in out)))
