"""Backtests: what a segment's programs would have used against recorded traffic, uploaded as
a CSV (the core's :func:`lighting.backtest.backtest`, in a worker thread)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import File, Form, UploadFile

from api.deps import State, StoreDep
from api.errors import bad_field
from api.routers.lighting.computing import CORE_ERRORS, core_reason, nights, segment_of
from api.routers.lighting.shared import LightingReader, current, lighting_router
from api.schemas.lighting_figures import (
    FIRST_DATE,
    LAST_DATE,
    BacktestNightPublic,
    BacktestPublic,
)
from lighting.backtest import BacktestResult, TrafficRecord, backtest, parse_traffic_csv
from lighting.errors import LightingInputError
from lighting.site import Segment
from lighting.sun import night_of

router = lighting_router()

#: Largest traffic CSV accepted, in bytes (a year of 10-minute counts of 50 segments ≈ 150 MB
#: would be too much for one request; a year of one segment is ≈ 3 MB).
MAX_CSV_BYTES = 20 * 1024 * 1024


async def _records(file: UploadFile, segment_id: str) -> list[TrafficRecord]:
    """The segment's rows of the uploaded CSV (a 422 names the line and column of a bad row)."""
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
    return [r for r in records if r.segment_id == segment_id]


def _period(
    seg: Segment, mine: list[TrafficRecord], first: date | None, last: date | None
) -> tuple[date, date]:
    """The nights to replay: those given, else the nights of the segment's rows."""
    if first is None or last is None:
        if not mine:
            raise bad_field("body.file", f"no rows for segment {seg.segment_id!r}")
        tz = ZoneInfo(seg.timezone)
        try:
            first = first or night_of(min(r.at for r in mine), tz)
            last = last or night_of(max(r.at for r in mine), tz)
        except CORE_ERRORS as exc:
            raise bad_field("body.file", core_reason(exc)) from exc
    nights(first, last, "body")
    return first, last


def _public(result: BacktestResult, first: date, last: date, records: int) -> BacktestPublic:
    saved = result.program_only_wh - result.energy_wh
    return BacktestPublic(
        segment_id=result.segment_id,
        first_night=first,
        last_night=last,
        records=records,
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
    site = (await current(state.runtime, store)).config.site
    seg = segment_of(site, segment_id, "body.segment_id")
    mine = await _records(file, seg.segment_id)
    first, last = _period(seg, mine, first_night, last_night)
    lums = site.index.by_segment[seg.segment_id]
    try:
        result = await asyncio.to_thread(
            backtest, seg, lums, site.programs, mine, first, last, site.co2_g_per_kwh
        )
    except CORE_ERRORS as exc:
        raise bad_field("body.segment_id", core_reason(exc)) from exc
    return _public(result, first, last, len(mine))
