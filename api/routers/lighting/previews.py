"""Previews: the levels and energy of one night of a segment, and its energy per month of a
year, with its calendar's program, a stored one, or an unsaved one posted with the request."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from api.deps import State, StoreDep
from api.errors import bad_field
from api.routers.lighting.computing import (
    CORE_ERRORS,
    core_reason,
    energy_figures,
    program_of,
    segment_of,
)
from api.routers.lighting.shared import LightingReader, current, lighting_router
from api.schemas.lighting_figures import (
    CurvePointPublic,
    MonthEnergyPublic,
    NightPreviewPublic,
    PreviewNightRequest,
    PreviewYearRequest,
    StepAtPublic,
    YearPreviewPublic,
)
from lighting.preview import NightEnergy, preview_night, preview_year
from lighting.svg import render_levels_svg, render_year_svg

router = lighting_router()


@router.post(
    "/preview/night",
    response_model=NightPreviewPublic,
    summary="Levels per step and over time, and energy, of one night of a segment",
)
async def preview_one_night(
    body: PreviewNightRequest, _caller: LightingReader, store: StoreDep, state: State
) -> NightPreviewPublic:
    site = (await current(state.runtime, store)).config.site
    seg = segment_of(site, body.segment_id, "body.segment_id")
    program = program_of(site, body.program_name, body.program)
    try:
        preview = preview_night(
            seg,
            site.index.by_segment[seg.segment_id],
            site.programs,
            body.night,
            program,
            site.co2_g_per_kwh,
        )
    except CORE_ERRORS as exc:
        field = "body.program" if body.program is not None else "body.night"
        raise bad_field(field, core_reason(exc)) from exc
    tz = ZoneInfo(seg.timezone)
    e = preview.energy
    title = f"{seg.segment_id} — {body.night.isoformat()} — {e.program}"
    return NightPreviewPublic(
        segment_id=seg.segment_id,
        night=body.night,
        program=e.program,
        rule=e.rule,
        steps=[
            StepAtPublic(
                at=s.at,
                local_time=s.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                step=s.step_name,
                level_pct=s.level_pct,
                ramp_s=s.ramp_s,
                note=s.note,
            )
            for s in preview.night.steps
        ],
        curve=[CurvePointPublic(at=t, level_pct=level) for t, level in preview.curve],
        svg=render_levels_svg([(e.program, preview.curve)], seg.timezone, title),
        **energy_figures([e], site.co2_g_per_kwh),
    )


@router.post(
    "/preview/year",
    response_model=YearPreviewPublic,
    summary="Energy per month of a year and savings against full light, for a segment",
)
async def preview_a_year(
    body: PreviewYearRequest, _caller: LightingReader, store: StoreDep, state: State
) -> YearPreviewPublic:
    site = (await current(state.runtime, store)).config.site
    seg = segment_of(site, body.segment_id, "body.segment_id")
    program = program_of(site, body.program_name, body.program)
    lums = site.index.by_segment[seg.segment_id]
    try:
        year = await asyncio.to_thread(
            preview_year, seg, lums, site.programs, body.year, program, site.co2_g_per_kwh
        )
    except CORE_ERRORS as exc:
        field = "body.program" if body.program is not None else "body.year"
        raise bad_field(field, core_reason(exc)) from exc
    by_month: dict[str, list[NightEnergy]] = {}
    for row in year.rows:
        by_month.setdefault(f"{row.night.year:04d}-{row.night.month:02d}", []).append(row)
    name = program.name if program is not None else "calendar"
    return YearPreviewPublic(
        segment_id=seg.segment_id,
        year=body.year,
        program=name,
        months=[
            MonthEnergyPublic(month=m, nights=len(rows), **energy_figures(rows, site.co2_g_per_kwh))
            for m, rows in sorted(by_month.items())
        ],
        svg=render_year_svg(year.rows, f"{seg.segment_id} — {body.year} — {name}"),
        **energy_figures(year.rows, site.co2_g_per_kwh),
    )
