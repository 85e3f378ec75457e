"""Street lighting figures: a preview of any night or a whole year, a backtest against an
uploaded traffic CSV, energy and savings over a period, and luminaire failures.

All of it computes with the pure core (:mod:`lighting.preview`, :mod:`lighting.backtest`,
:mod:`lighting.svg`) on the configuration in force (:func:`api.routers.lighting.current`);
nothing is changed, so operators may ask as well as lighting engineers. The year, the backtest
and the savings run in a worker thread: a year is 365 nights of sun positions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, UploadFile

from api.deps import ClockDep, State, StoreDep
from api.errors import bad_field
from api.routers.lighting import LightingReader, current
from api.runtime import site_lighting
from api.schemas.lighting import (
    FIRST_DATE,
    LAST_DATE,
    BacktestNightPublic,
    BacktestPublic,
    CurvePointPublic,
    FailurePublic,
    FailuresPublic,
    MonthEnergyPublic,
    NightPreviewPublic,
    PreviewNightRequest,
    PreviewYearRequest,
    SavingsPublic,
    SegmentSavingsPublic,
    StepAtPublic,
    YearPreviewPublic,
)
from lighting.backtest import backtest, parse_traffic_csv
from lighting.config import LightingSite, ProgramConfig
from lighting.errors import LightingInputError
from lighting.preview import NightEnergy, co2_kg, preview_night, preview_year
from lighting.program import Program
from lighting.site import Segment
from lighting.svg import render_levels_svg, render_year_svg
from store.lighting_config import effective_lighting

router = APIRouter(prefix="/api/v1/lighting", tags=["lighting"])

#: Longest backtest and savings period, in nights.
MAX_NIGHTS = 400
#: Largest traffic CSV accepted, in bytes (a year of 10-minute counts of 50 segments ≈ 150 MB
#: would be too much for one request; a year of one segment is ≈ 3 MB).
MAX_CSV_BYTES = 20 * 1024 * 1024


#: What the core raises for input it cannot compute with: its own LightingInputError (a
#: ValueError), and arithmetic beyond the calendar (an offset of 10^300 minutes).
CORE_ERRORS = (ValueError, ArithmeticError)


def core_reason(exc: Exception) -> str:
    """The reason of a core error, naming the core's field where it has one."""
    if isinstance(exc, LightingInputError):
        return f"{exc.field}: {exc.reason}"
    return f"cannot be computed: {exc}"


def night_of(instant: datetime, tz: ZoneInfo) -> date:
    """The night an instant belongs to: named by the local date of its evening (noon to noon)."""
    local = instant.astimezone(tz)
    return local.date() if local.hour >= 12 else local.date() - timedelta(days=1)


def _segment(site: LightingSite, segment_id: str, field: str) -> Segment:
    seg = site.index.segments.get(segment_id)
    if seg is None:
        raise bad_field(field, f"unknown segment {segment_id!r}")
    return seg


def _program(site: LightingSite, name: str | None, posted: ProgramConfig | None) -> Program | None:
    if posted is not None:
        return posted.program
    if name is None:
        return None
    program = site.programs.programs.get(name)
    if program is None:
        raise bad_field("body.program_name", f"unknown program {name!r}")
    return program


def _energy(rows: Iterable[NightEnergy], co2_g_per_kwh: float) -> dict[str, int | float]:
    rows = list(rows)
    used = sum(r.energy_wh for r in rows)
    base = sum(r.baseline_wh for r in rows)
    return {
        "energy_wh": used,
        "baseline_wh": base,
        "savings_wh": base - used,
        "savings_pct": round(100.0 * (base - used) / base, 2) if base else 0.0,
        "co2_kg": round(co2_kg(used, co2_g_per_kwh), 3),
        "co2_saved_kg": round(co2_kg(base - used, co2_g_per_kwh), 3),
    }


# -- preview ------------------------------------------------------------------------------------


@router.post(
    "/preview/night",
    response_model=NightPreviewPublic,
    summary="Levels per step and over time, and energy, of one night of a segment",
)
async def preview_one_night(
    body: PreviewNightRequest, _caller: LightingReader, store: StoreDep, state: State
) -> NightPreviewPublic:
    site = (await current(state, store)).config.site
    seg = _segment(site, body.segment_id, "body.segment_id")
    program = _program(site, body.program_name, body.program)
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
        **_energy([e], site.co2_g_per_kwh),
    )


@router.post(
    "/preview/year",
    response_model=YearPreviewPublic,
    summary="Energy per month of a year and savings against full light, for a segment",
)
async def preview_a_year(
    body: PreviewYearRequest, _caller: LightingReader, store: StoreDep, state: State
) -> YearPreviewPublic:
    site = (await current(state, store)).config.site
    seg = _segment(site, body.segment_id, "body.segment_id")
    program = _program(site, body.program_name, body.program)
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
            MonthEnergyPublic(month=m, nights=len(rows), **_energy(rows, site.co2_g_per_kwh))
            for m, rows in sorted(by_month.items())
        ],
        svg=render_year_svg(year.rows, f"{seg.segment_id} — {body.year} — {name}"),
        **_energy(year.rows, site.co2_g_per_kwh),
    )


# -- backtest -----------------------------------------------------------------------------------


@router.post(
    "/backtest",
    response_model=BacktestPublic,
    summary="What the segment's programs would have used against recorded traffic",
    description="Upload a CSV (multipart field `file`) with the columns `ts` (window end, ISO "
    "8601 with offset), `segment_id` and `count` (empty: the sensor sent nothing). Without "
    "`first_night`/`last_night` the nights of the segment's rows are replayed. A bad row is "
    "a 422 naming its line and column.",
)
async def backtest_traffic(
    _caller: LightingReader,
    store: StoreDep,
    state: State,
    file: Annotated[UploadFile, File(description="the traffic CSV")],
    segment_id: Annotated[str, Form(min_length=1, max_length=128)],
    first_night: Annotated[date | None, Form(ge=FIRST_DATE, le=LAST_DATE)] = None,
    last_night: Annotated[date | None, Form(ge=FIRST_DATE, le=LAST_DATE)] = None,
) -> BacktestPublic:
    site = (await current(state, store)).config.site
    seg = _segment(site, segment_id, "body.segment_id")
    raw = await file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise bad_field("body.file", f"larger than {MAX_CSV_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_field("body.file", f"not UTF-8 text (byte {exc.start})") from exc
    try:
        records = parse_traffic_csv(text.splitlines(), source="file")
    except LightingInputError as exc:  # field: "file line 3.count"
        raise bad_field(f"body.{exc.field}", exc.reason) from exc
    mine = [r for r in records if r.segment_id == seg.segment_id]
    tz = ZoneInfo(seg.timezone)
    if first_night is None or last_night is None:
        if not mine:
            raise bad_field("body.file", f"no rows for segment {seg.segment_id!r}")
        try:
            first_night = first_night or night_of(min(r.at for r in mine), tz)
            last_night = last_night or night_of(max(r.at for r in mine), tz)
        except CORE_ERRORS as exc:
            raise bad_field("body.file", core_reason(exc)) from exc
    if last_night < first_night:
        raise bad_field("body.last_night", "before first_night")
    if (last_night - first_night).days + 1 > MAX_NIGHTS:
        raise bad_field("body.last_night", f"more than {MAX_NIGHTS} nights after first_night")
    lums = site.index.by_segment[seg.segment_id]
    try:
        result = await asyncio.to_thread(
            backtest, seg, lums, site.programs, mine, first_night, last_night, site.co2_g_per_kwh
        )
    except CORE_ERRORS as exc:
        raise bad_field("body.segment_id", core_reason(exc)) from exc
    saved = result.program_only_wh - result.energy_wh
    return BacktestPublic(
        segment_id=seg.segment_id,
        first_night=first_night,
        last_night=last_night,
        records=len(mine),
        energy_wh=result.energy_wh,
        program_only_wh=result.program_only_wh,
        baseline_wh=result.baseline_wh,
        adaptation_saved_wh=saved,
        adaptation_saved_pct=(
            round(100.0 * saved / result.program_only_wh, 2) if result.program_only_wh else 0.0
        ),
        savings_pct=round(result.savings_pct, 2),
        lowered_h=round(sum(n.lowered_h for n in result.nights), 3),
        nights=[
            BacktestNightPublic(
                night=n.energy.night,
                program=n.energy.program,
                energy_wh=n.energy.energy_wh,
                program_only_wh=n.program_only_wh,
                baseline_wh=n.energy.baseline_wh,
                lowered_h=round(n.lowered_h, 3),
            )
            for n in result.nights
        ],
    )


# -- savings and failures -----------------------------------------------------------------------

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
    site = (await current(state, store)).config.site
    segments = list(site.index.segments.values())
    if segment_id is not None:
        segments = [_segment(site, segment_id, "query.segment_id")]
    if last_night is None:
        tz = ZoneInfo(segments[0].timezone if segments else state.settings.timezone)
        last_night = night_of(clock.now(), tz) - timedelta(days=1)
    if first_night is None:
        first_night = last_night - timedelta(days=29)
    if last_night < first_night:
        raise bad_field("query.last_night", "before first_night")
    count = (last_night - first_night).days + 1
    if count > MAX_NIGHTS:
        raise bad_field("query.last_night", f"more than {MAX_NIGHTS} nights after first_night")
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
                segment_id=seg.segment_id, nights=count, **_energy(rows, site.co2_g_per_kwh)
            )
        )
    return SavingsPublic(
        first_night=first_night,
        last_night=last_night,
        basis=SAVINGS_BASIS,
        segments=per_segment,
        **_energy(everything, site.co2_g_per_kwh),
    )


@router.get(
    "/failures",
    response_model=FailuresPublic,
    summary="Active luminaire alarms (lamp failure, power out of range, communication lost …)",
)
async def failures(_caller: LightingReader, store: StoreDep, state: State) -> FailuresPublic:
    chosen = await effective_lighting(
        store.lighting_config, site_lighting(state.runtime), announce=False
    )
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
