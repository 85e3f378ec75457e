"""Energy and savings against full light over a period, per segment and in all (modelled from
each night's program: see :data:`SAVINGS_BASIS`)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query

from api.deps import ClockDep, State, StoreDep
from api.errors import bad_field
from api.routers.lighting.computing import (
    CORE_ERRORS,
    core_reason,
    energy_figures,
    nights,
    segment_of,
)
from api.routers.lighting.shared import LightingReader, current, lighting_router
from api.schemas.lighting_figures import (
    FIRST_DATE,
    LAST_DATE,
    SavingsPublic,
    SegmentSavingsPublic,
)
from lighting.config import LightingSite
from lighting.preview import NightEnergy, preview_night
from lighting.site import Segment
from lighting.sun import night_of

router = lighting_router()

SAVINGS_BASIS = (
    "model: each night's program at the design class with floors (no traffic adaptation, "
    "presence boosts or failures), against full light from sunset to sunrise"
)


def _nights_energy(site: LightingSite, seg: Segment, first: date, count: int) -> list[NightEnergy]:
    lums = site.index.by_segment[seg.segment_id]
    return [
        preview_night(
            seg, lums, site.programs, first + timedelta(days=k), None, site.co2_g_per_kwh
        ).energy
        for k in range(count)
    ]


@router.get(
    "/savings",
    response_model=SavingsPublic,
    summary="Energy and savings against full light over a period, per segment",
)
async def savings(
    _caller: LightingReader,
    store: StoreDep,
    state: State,
    clock: ClockDep,
    first_night: Annotated[
        date | None, Query(ge=FIRST_DATE, le=LAST_DATE, description="default: 30 nights back")
    ] = None,
    last_night: Annotated[
        date | None, Query(ge=FIRST_DATE, le=LAST_DATE, description="default: the last whole night")
    ] = None,
    segment_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> SavingsPublic:
    site = (await current(state.runtime, store)).config.site
    segments = list(site.index.segments.values())
    if segment_id is not None:
        segments = [segment_of(site, segment_id, "query.segment_id")]
    if last_night is None:
        tz = ZoneInfo(segments[0].timezone if segments else state.settings.timezone)
        last_night = night_of(clock.now(), tz) - timedelta(days=1)
    if first_night is None:
        first_night = last_night - timedelta(days=29)
    count = nights(first_night, last_night, "query")
    per_segment: list[SegmentSavingsPublic] = []
    everything: list[NightEnergy] = []
    for seg in segments:
        try:
            rows = await asyncio.to_thread(_nights_energy, site, seg, first_night, count)
        except CORE_ERRORS as exc:
            raise bad_field("query.segment_id", core_reason(exc)) from exc
        everything.extend(rows)
        per_segment.append(
            SegmentSavingsPublic(
                segment_id=seg.segment_id, nights=count, **energy_figures(rows, site.co2_g_per_kwh)
            )
        )
    return SavingsPublic(
        first_night=first_night,
        last_night=last_night,
        basis=SAVINGS_BASIS,
        segments=per_segment,
        **energy_figures(everything, site.co2_g_per_kwh),
    )
