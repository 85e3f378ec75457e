"""Segments (street sections): their luminaires, the running lighting's decision for each,
and which calendar or program a segment follows (changed as a version, applied, audited:
:mod:`api.routers.lighting.edits`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.acting import ActingDep
from api.deps import State, StoreDep
from api.errors import bad_field, not_found
from api.routers.lighting.edits import Edit, edit_lighting
from api.routers.lighting.shared import (
    Id,
    LightingEngineer,
    LightingReader,
    current,
    find,
    lighting_router,
)
from api.runtime import LightingControl, lighting_control
from api.schemas.lighting import (
    ChangePublic,
    SegmentAssignment,
    SegmentLivePublic,
    SegmentPublic,
)
from lighting.config import LightingConfig
from store.lighting_config import EffectiveLighting, lighting_document

router = lighting_router()


def _live(control: LightingControl | None, segment_id: str) -> SegmentLivePublic | None:
    decision = control.segment_decisions.get(segment_id) if control is not None else None
    if decision is None:
        return None
    return SegmentLivePublic(
        program=decision.program,
        step=decision.step,
        program_pct=decision.program_pct,
        lighting_class=decision.lighting_class,
        level_pct=decision.level_pct,
        reasons=list(decision.reasons),
    )


def _segment_public(
    control: LightingControl | None, config: LightingConfig, segment_id: str
) -> SegmentPublic:
    seg = next(s for s in config.segments if s.id == segment_id)
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
        live=_live(control, segment_id),
    )


@router.get("/segments", response_model=list[SegmentPublic], summary="Segments (street sections)")
async def list_segments(
    _caller: LightingReader, store: StoreDep, state: State
) -> list[SegmentPublic]:
    config = (await current(state.runtime, store)).config
    control = lighting_control(state.runtime)
    return [_segment_public(control, config, s.id) for s in config.segments]


@router.get(
    "/segments/{segment_id}",
    response_model=SegmentPublic,
    summary="One segment, its luminaires and the running service's decision",
    responses={404: {"description": "no such segment"}},
)
async def get_segment(
    segment_id: Id, _caller: LightingReader, store: StoreDep, state: State
) -> SegmentPublic:
    config = (await current(state.runtime, store)).config
    if segment_id not in config.site.index.segments:
        raise not_found(f"no segment {segment_id!r}")
    return _segment_public(lighting_control(state.runtime), config, segment_id)


def _assignment(chosen: EffectiveLighting, segment_id: str, body: SegmentAssignment) -> Edit:
    """The segment follows the calendar given, or the calendar ``only <program>`` (created
    with the holiday region of the segment's current calendar when it does not exist)."""
    config = chosen.config
    if segment_id not in config.site.index.segments:
        raise not_found(f"no segment {segment_id!r}")
    document = lighting_document(config)
    segment = next(s for s in document["segments"] if s["id"] == segment_id)
    old = {"calendar": segment["calendar"]}
    if body.calendar is not None:
        if find(config.calendars, body.calendar) is None:
            raise bad_field("body.calendar", f"unknown calendar {body.calendar!r}")
        calendar_name = body.calendar
        new: dict[str, Any] = {"calendar": calendar_name}
    else:
        assert body.program is not None  # SegmentAssignment: exactly one of the two
        if find(config.programs, body.program) is None:
            raise bad_field("body.program", f"unknown program {body.program!r}")
        calendar_name = f"only {body.program}"
        if find(config.calendars, calendar_name) is None:
            previous = config.calendars[find(config.calendars, segment["calendar"]) or 0]
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
    return Edit(
        document,
        action="lighting.segment.assign",
        target=f"segment:{segment_id}",
        change=f"segment {segment_id!r} follows calendar {calendar_name!r}",
        old_value=old,
        new_value=new,
        item={"segment": segment_id, **new},
    )


@router.put(
    "/segments/{segment_id}/assignment",
    response_model=ChangePublic,
    summary="Assign a calendar, or one program for every night, to a segment (audited)",
    responses={404: {"description": "no such segment"}, 409: {"description": "changed meanwhile"}},
)
async def assign_segment(
    segment_id: Id, body: SegmentAssignment, caller: LightingEngineer, acting: ActingDep
) -> object:
    async def make(chosen: EffectiveLighting, _now: datetime) -> Edit:
        return _assignment(chosen, segment_id, body)

    return await edit_lighting(caller, acting, 200, make)
