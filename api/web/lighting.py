"""The lighting engineer's page: a street's luminaires with their levels and reasons, the
program editor with its live preview (``POST /lighting/preview``), saving a program through
the lighting API's audited route, and a segment's year (``/lighting/year.json``).

The JSON endpoints take the CSRF token in ``X-CSRF-Token`` and answer 422 with the fields'
errors as the API does.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from api.acting import acting_for
from api.auth import Principal, Role
from api.errors import field_errors
from api.routers.lighting.programs import update_program
from api.runtime import lighting_control
from api.schemas.lighting import ProgramUpdate
from api.web import lighting_views as views
from api.web.render import guard, render, state_of, tz_of
from api.web.session import CSRF_HEADER, csrf_ok
from lighting.config import LightingConfig, ProgramConfig
from lighting.preview import NightPreview
from lighting.sun import night_of

router = APIRouter(include_in_schema=False)

#: The anchors the program editor offers for a step.
ANCHORS = ["sunset", "civil_dusk", "solar_midnight", "civil_dawn", "sunrise", "clock"]


class PreviewIn(BaseModel):
    segment: str = Field(min_length=1, max_length=128)
    night: date
    program: dict[str, Any] | None = Field(
        default=None, description="a program as in the site file (name, steps); None: stored"
    )


def _errors(exc: ValidationError, *prefix: str) -> list[dict[str, str]]:
    """The fields' errors, each field named from ``prefix`` on (``body.program.steps.0``)."""
    return [
        {"field": ".".join([*prefix, *map(str, e["loc"])]), "reason": e["msg"]}
        for e in exc.errors()
    ]


def _unprocessable(field: str, reason: str) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "reason": reason}]}, status_code=422)


def _preview_json(preview: NightPreview) -> dict[str, Any]:
    e = preview.energy
    return {
        "points": views.curve_points(preview.curve),
        "program": e.program,
        "rule": e.rule,
        "energy_wh": e.energy_wh,
        "baseline_wh": e.baseline_wh,
        "savings_pct": round(e.savings_pct, 1),
        "steps": [
            {"at": s.at.timestamp(), "level_pct": s.level_pct, "name": s.step_name}
            for s in preview.night.steps
        ],
    }


@router.get("/lighting", response_model=None)
async def lighting_page(
    request: Request,
    street: Annotated[str | None, Query(max_length=128)] = None,
    night: date | None = None,
) -> Response:
    who = await guard(request, Role.LIGHTING_ENGINEER)
    if isinstance(who, Response):
        return who
    state = state_of(request)
    assert state.store is not None
    found = await views.lighting_config(state.store, state.runtime)
    if found is None:
        return render(request, "lighting.html", who, config=None)
    config, source = found
    index = config.site.index
    streets = sorted(index.streets)
    chosen = street if street in index.streets else (streets[0] if streets else None)
    control = lighting_control(state.runtime)
    view = views.street_view(index, chosen, control) if chosen else None
    now, tz = state.clock.now(), tz_of(state)
    tonight = night_of(now, tz)
    segment = view.segment_ids[0] if view and view.segment_ids else next(iter(index.segments))
    preview = views.night_preview(config, segment, night or tonight)
    editor = {
        "segment": segment,
        "segments": sorted(index.segments),
        "night": (night or tonight).isoformat(),
        "tonight": tonight.isoformat(),
        "program": preview.night.program,
        "programs": {p.name: p.model_dump(mode="json") for p in config.programs},
        "anchors": ANCHORS,
        "stored": _preview_json(preview),
        "year": now.astimezone(tz).year,
    }
    return render(
        request,
        "lighting.html",
        who,
        config=config,
        source=source,
        streets=streets,
        street=view,
        editor=editor,
        preview=preview,
    )


async def _lighting_json(request: Request) -> tuple[Principal, LightingConfig] | Response:
    who = await guard(request, Role.LIGHTING_ENGINEER)
    if isinstance(who, Response):
        return who
    state = state_of(request)
    assert state.store is not None
    found = await views.lighting_config(state.store, state.runtime)
    if found is None:
        return JSONResponse({"detail": "no lighting configuration"}, status_code=404)
    return who, found[0]


@router.post("/lighting/preview", response_model=None)
async def lighting_preview(request: Request) -> Response:
    """The night's level curve and energy of a segment, with an edited (unsaved) program or
    the stored one. JSON in, JSON out; the CSRF token comes in ``X-CSRF-Token``."""
    got = await _lighting_json(request)
    if isinstance(got, Response):
        return got
    _, config = got
    if not csrf_ok(state_of(request), request, request.headers.get(CSRF_HEADER)):
        return JSONResponse({"detail": "bad or missing CSRF token"}, status_code=403)
    try:
        body = PreviewIn.model_validate(await request.json())
    except ValidationError as exc:
        return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)
    except ValueError:
        return _unprocessable("body", "not JSON")
    if body.segment not in config.site.index.segments:
        return _unprocessable("body.segment", "no such segment")
    program = None
    if body.program is not None:
        try:
            program = ProgramConfig.model_validate(body.program).program
        except ValidationError as exc:
            return JSONResponse({"detail": _errors(exc, "body", "program")}, status_code=422)
    preview = views.night_preview(config, body.segment, body.night, program)
    return JSONResponse(_preview_json(preview))


@router.post("/lighting/programs/{name}", response_model=None)
async def lighting_save_program(request: Request, name: str) -> Response:
    """Save the edited steps of a program through the lighting API's
    ``PUT /api/v1/lighting/programs/{name}`` (validated over a year, stored as a new
    version, applied to the running service, audited). JSON ``{"steps": [...]}``."""
    who = await guard(request, Role.LIGHTING_ENGINEER)
    if isinstance(who, Response):
        return who
    state = state_of(request)
    if not csrf_ok(state, request, request.headers.get(CSRF_HEADER)):
        return JSONResponse({"detail": "bad or missing CSRF token"}, status_code=403)
    try:
        body = ProgramUpdate.model_validate(await request.json())
    except ValidationError as exc:
        return JSONResponse({"detail": _errors(exc, "body")}, status_code=422)
    except ValueError:
        return _unprocessable("body", "not JSON")
    try:
        answer = await update_program(name, body, who, acting_for(state, request))
    except RequestValidationError as exc:
        return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)
    assert isinstance(answer, Response)
    return answer


@router.get("/lighting/year.json", response_model=None)
async def lighting_year(
    request: Request,
    segment: Annotated[str, Query(min_length=1, max_length=128)],
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> Response:
    """Energy per month of a segment's year, with the full-light baseline and savings."""
    got = await _lighting_json(request)
    if isinstance(got, Response):
        return got
    _, config = got
    if segment not in config.site.index.segments:
        return _unprocessable("query.segment", "no such segment")
    year_preview = views.year_preview(config, segment, year)
    months: dict[int, list[int]] = {m: [0, 0] for m in range(1, 13)}
    for row in year_preview.rows:
        months[row.night.month][0] += row.energy_wh
        months[row.night.month][1] += row.baseline_wh
    return JSONResponse(
        {
            "segment": segment,
            "year": year,
            "energy_kwh": round(year_preview.energy_wh / 1000, 1),
            "baseline_kwh": round(year_preview.baseline_wh / 1000, 1),
            "savings_pct": round(year_preview.savings_pct, 1),
            "co2_saved_kg": round(sum(r.co2_saved_kg for r in year_preview.rows), 1),
            "months": [
                {"month": m, "energy_kwh": round(e / 1000, 2), "baseline_kwh": round(b / 1000, 2)}
                for m, (e, b) in months.items()
            ],
        }
    )
