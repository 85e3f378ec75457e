"""The server-rendered pages: login, one page per role, the language switch.

=====================  =========================================  =========================
page                   shows                                      who
=====================  =========================================  =========================
``/member``            today per quarter-hour, the month per day  member (own data only)
``/member/balances.csv``  the API's CSV export of the own balances  member
``/operator``          community now, 24 h plan, assets, alarms,  operator
                       overrides (``POST /operator/override``)
``/lighting``          a street's luminaires and reasons, the     lighting engineer
                       program editor with its preview, the year
``/audit``             the audit log and its chain verification   auditor, operator
=====================  =========================================  =========================

Without a session a page redirects to ``/login?next=…``; a role that may not open a page
gets 403. Forms POST with the CSRF token of :mod:`api.web.session`. The figures come from
:mod:`api.web.views`, which reads through the API's own functions, and the live state of the
running service from :mod:`api.live`, as the API's ``/assets`` and ``/community/now`` do.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, ValidationError

from api.auth import Principal, Role
from api.balances import Resolution
from api.deps import ROW_ID_MAX
from api.errors import field_errors
from api.live import assets_now, community_live
from api.periods import period_query
from api.routers.commands import create_override
from api.routers.exports import balances_csv
from api.routers.lighting import update_program
from api.routers.privacy import request_statuses
from api.schemas.lighting import ProgramUpdate
from api.schemas.operations import OverrideCreate
from api.state import AppState
from api.web import views
from api.web.i18n import LANG_COOKIE, LANGUAGES, language, translator
from api.web.session import (
    CSRF_HEADER,
    clear_session,
    csrf_ok,
    csrf_token,
    ensure_presession,
    session_principal,
    set_session,
)
from kernel.errors import AuthError
from kernel.readings import Reading
from lighting.config import ProgramConfig

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)

#: The setpoint kinds an override may set (the API's ``OverrideCreate.kind``).
OVERRIDE_KINDS = ("battery_power_w", "power_limit_pct", "load_power_w", "dim_level_pct")

#: Which pages each role may open, in the order of the navigation.
PAGES: dict[str, tuple[Role, ...]] = {
    "/member": (Role.MEMBER,),
    "/operator": (Role.OPERATOR,),
    "/lighting": (Role.LIGHTING_ENGINEER,),
    "/audit": (Role.AUDITOR, Role.OPERATOR),
}
NAV_KEYS = {
    "/member": "nav_member",
    "/operator": "nav_operator",
    "/lighting": "nav_lighting",
    "/audit": "nav_audit",
}
HOME: dict[Role, str] = {
    Role.MEMBER: "/member",
    Role.OPERATOR: "/operator",
    Role.LIGHTING_ENGINEER: "/lighting",
    Role.AUDITOR: "/audit",
}


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.waldstadt
    return state


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path of this site: no scheme, no host, no ``//`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _tz(state: AppState) -> ZoneInfo:
    return ZoneInfo(state.settings.timezone)


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    state = _state(request)
    lang = language(request)
    tz = _tz(state)

    def local(value: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
        return "—" if value is None else value.astimezone(tz).strftime(fmt)

    def num(value: float | str | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        number = float(value)
        if math.isnan(number):
            return "—"
        text = f"{number:,.{digits}f}"
        if lang == "de":
            text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
        return text

    def reading(r: Reading) -> str:
        """A reading with its unit, power and energy in k (a dash when it has no value)."""
        if r.value is None:
            return f"{r.channel}: —"
        scaled = {"W": ("kW", 1000.0, 2), "Wh": ("kWh", 1000.0, 1)}
        unit, divisor, digits = scaled.get(r.unit, (r.unit, 1.0, 1))
        return f"{r.channel}: {num(r.value / divisor, digits)} {unit}".rstrip()

    nav = []
    if principal is not None:
        nav = [(path, NAV_KEYS[path]) for path, roles in PAGES.items() if principal.role in roles]
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "t": translator(lang),
            "lang": lang,
            "languages": LANGUAGES,
            "principal": principal,
            "nav": nav,
            "path": request.url.path,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "csrf": csrf_token(state, request),
            "local": local,
            "num": num,
            "reading": reading,
            "timezone": state.settings.timezone,
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'"
    )
    return response


async def guard(request: Request, *roles: Role) -> Principal | Response:
    """The session's principal if its role may open the page; else the redirect to the login
    (no or an expired session) or a 403 page."""
    principal = await session_principal(_state(request), request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if principal.role not in roles:
        return render(request, "error.html", principal, status_code=403, message_key="forbidden")
    return principal


# -- login, logout, language --------------------------------------------------------------------


@router.get("/", response_model=None)
async def home(request: Request) -> Response:
    principal = await session_principal(_state(request), request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME[principal.role], status_code=303)


@router.get("/login", response_model=None)
async def login_page(request: Request, next: str | None = None) -> Response:
    principal = await session_principal(_state(request), request)
    if principal is not None:
        return RedirectResponse(safe_next(next, HOME[principal.role]), status_code=303)
    # the CSRF token of the form is bound to the pre-session cookie: make it first
    probe = Response()
    value = ensure_presession(request, probe)
    request.cookies.setdefault("waldstadt_presession", value)
    response = render(request, "login.html", None, next=safe_next(next, ""), error_key=None)
    for header, content in probe.raw_headers:
        if header == b"set-cookie":
            response.raw_headers.append((header, content))
    return response


@router.post("/login", response_model=None)
async def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    state = _state(request)
    if not csrf_ok(state, request, csrf):
        return render(
            request, "login.html", None, status_code=403, next=next, error_key="csrf_failed"
        )
    client = request.client.host if request.client else "unknown"
    wait = state.login_limiter.take(f"{client}:{username}", state.auth_clock.monotonic())
    if wait > 0:
        return render(
            request, "login.html", None, status_code=429, next=next, error_key="login_slow_down"
        )
    try:
        issued = await state.auth().login(username, password)
    except AuthError:
        return render(
            request, "login.html", None, status_code=401, next=next, error_key="login_failed"
        )
    target = safe_next(next, HOME[issued.principal.role])
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, issued)
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not csrf_ok(_state(request), request, csrf):
        return render(request, "error.html", None, status_code=403, message_key="csrf_failed")
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response


@router.get("/lang/{code}", response_model=None)
async def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    """Remember the language in a cookie (a year) and go back to the page."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True, path="/"
        )
    return response


# -- member -------------------------------------------------------------------------------------


@router.get("/member", response_model=None)
async def member_page(request: Request) -> Response:
    who = await guard(request, Role.MEMBER)
    if isinstance(who, Response):
        return who
    state = _state(request)
    assert state.store is not None
    assert who.member_id is not None
    view = await views.member_view(state.store, who.member_id, state.clock.now(), _tz(state))
    chart = {"times": view.qh_times, "series": view.qh_series, "source": view.qh_source}
    return render(request, "member.html", who, view=view, chart=chart)


@router.get("/member/balances.csv", response_model=None)
async def member_csv(
    request: Request,
    resolution: Resolution = Resolution.DAY,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    """The API's CSV export (``/api/v1/exports/balances.csv``) of the member's own balances."""
    who = await guard(request, Role.MEMBER)
    if isinstance(who, Response):
        return who
    state = _state(request)
    assert state.store is not None
    period = await period_query(state, resolution, start, end)
    return await balances_csv(who, state.store, period, None)


# -- operator -----------------------------------------------------------------------------------


@router.get("/operator", response_model=None)
async def operator_page(
    request: Request,
    override: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    who = await guard(request, Role.OPERATOR)
    if isinstance(who, Response):
        return who
    return await _operator(request, who, done=override)


async def _operator(
    request: Request,
    who: Principal,
    *,
    done: str | None = None,
    errors: list[dict[str, str]] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    state = _state(request)
    assert state.store is not None
    now = state.clock.now()
    runtime = state.runtime
    plans = await views.current_plans(state.store, runtime, now)
    charts = [
        {
            "community": p.plan.community_id,
            "times": p.times,
            "grid": p.grid_kw,
            "shared": p.shared_kw,
            "batteries": p.batteries,
            "evs": p.evs,
        }
        for p in plans
    ]
    return render(
        request,
        "operator.html",
        who,
        status_code=status_code,
        now=now,
        has_runtime=runtime is not None,
        live=community_live(runtime),
        plans=plans,
        charts=charts,
        assets=assets_now(runtime),
        alarms=await views.active_alarms(state.store),
        deletion_requests=[r for r in await request_statuses(state.store) if r.status == "open"],
        overrides=await views.recent_overrides(state.store, now),
        targets=views.override_targets(runtime),
        kinds=OVERRIDE_KINDS,
        done=done,
        errors=errors or [],
        form=form or {},
    )


@router.post("/operator/override", response_model=None)
async def operator_override(
    request: Request,
    target: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=50)] = "",
    value: Annotated[str, Form(max_length=200)] = "",
    expires_min: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The API's override (``POST /api/v1/commands/overrides``: journaled, audited)."""
    who = await guard(request, Role.OPERATOR)
    if isinstance(who, Response):
        return who
    state = _state(request)
    if not csrf_ok(state, request, csrf):
        return render(request, "error.html", who, status_code=403, message_key="csrf_failed")
    form = {"target": target, "kind": kind, "value": value, "expires_min": expires_min,
            "reason": reason}  # fmt: skip
    errors: list[dict[str, str]] = []
    number = _number(value.replace(",", "."))
    minutes = _number(expires_min.replace(",", "."))
    if number is None:
        errors.append({"field": "value", "reason": "not a number"})
    if minutes is None:
        errors.append({"field": "expires_min", "reason": "not a number"})
    if not errors:
        assert number is not None
        assert minutes is not None
        data: dict[str, Any] = {
            "target": target,
            "value": number,
            "expires_in_s": round(minutes * 60),
            "reason": reason,
        }
        if "kind" in OverrideCreate.model_fields:
            data["kind"] = kind
        try:
            body = OverrideCreate.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc.errors())
    if errors:
        return await _operator(request, who, errors=errors, form=form, status_code=422)
    assert state.store is not None
    try:
        answer = await create_override(body, who, state.store, state.clock, state, request, None)
    except RequestValidationError as exc:
        return await _operator(
            request, who, errors=field_errors(exc.errors()), form=form, status_code=422
        )
    assert isinstance(answer, JSONResponse)
    created = json.loads(bytes(answer.body))
    return RedirectResponse(
        f"/operator?override={quote(created['command_id'], safe='')}", status_code=303
    )


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# -- lighting -----------------------------------------------------------------------------------


class PreviewIn(BaseModel):
    segment: str = Field(min_length=1, max_length=128)
    night: date
    program: dict[str, Any] | None = Field(
        default=None, description="a program as in the site file (name, steps); None: stored"
    )


def _program_json(program: ProgramConfig) -> dict[str, Any]:
    out: dict[str, Any] = program.model_dump(mode="json")
    return out


@router.get("/lighting", response_model=None)
async def lighting_page(
    request: Request,
    street: Annotated[str | None, Query(max_length=128)] = None,
    night: date | None = None,
) -> Response:
    who = await guard(request, Role.LIGHTING_ENGINEER)
    if isinstance(who, Response):
        return who
    state = _state(request)
    assert state.store is not None
    found = await views.lighting_config(state.store, state.runtime)
    if found is None:
        return render(request, "lighting.html", who, config=None)
    config, source = found
    index = config.site.index
    streets = sorted(index.streets)
    chosen = street if street in index.streets else (streets[0] if streets else None)
    view = views.street_view(index, chosen, state.runtime) if chosen else None
    tonight = views.tonight(state.clock.now(), _tz(state))
    segment = view.segment_ids[0] if view and view.segment_ids else next(iter(index.segments))
    preview = views.night_preview(config, segment, night or tonight)
    program = next(p for p in config.programs if p.name == preview.night.program)
    editor = {
        "segment": segment,
        "segments": sorted(index.segments),
        "night": (night or tonight).isoformat(),
        "tonight": tonight.isoformat(),
        "program": program.name,
        "programs": {p.name: _program_json(p) for p in config.programs},
        "anchors": ["sunset", "civil_dusk", "solar_midnight", "civil_dawn", "sunrise", "clock"],
        "stored": _preview_json(preview),
        "year": state.clock.now().astimezone(_tz(state)).year,
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


def _preview_json(preview: Any) -> dict[str, Any]:
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


async def _lighting_json(request: Request) -> tuple[Principal, Any] | Response:
    who = await guard(request, Role.LIGHTING_ENGINEER)
    if isinstance(who, Response):
        return who
    state = _state(request)
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
    if not csrf_ok(_state(request), request, request.headers.get(CSRF_HEADER)):
        return JSONResponse({"detail": "bad or missing CSRF token"}, status_code=403)
    try:
        raw = await request.json()
        body = PreviewIn.model_validate(raw)
    except ValueError as exc:
        detail = (
            field_errors(exc.errors())
            if isinstance(exc, ValidationError)
            else [{"field": "body", "reason": "not JSON"}]
        )
        return JSONResponse({"detail": detail}, status_code=422)
    if body.segment not in config.site.index.segments:
        return JSONResponse(
            {"detail": [{"field": "body.segment", "reason": "no such segment"}]}, status_code=422
        )
    program = None
    if body.program is not None:
        try:
            program = ProgramConfig.model_validate(body.program).program
        except ValidationError as exc:
            errs = [
                {"field": ".".join(["body", "program", *map(str, e["loc"])]), "reason": e["msg"]}
                for e in exc.errors()
            ]
            return JSONResponse({"detail": errs}, status_code=422)
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
    state = _state(request)
    if not csrf_ok(state, request, request.headers.get(CSRF_HEADER)):
        return JSONResponse({"detail": "bad or missing CSRF token"}, status_code=403)
    try:
        body = ProgramUpdate.model_validate(await request.json())
    except ValidationError as exc:
        errs = [
            {"field": ".".join(["body", *map(str, e["loc"])]), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errs}, status_code=422)
    except ValueError:
        return JSONResponse({"detail": [{"field": "body", "reason": "not JSON"}]}, status_code=422)
    assert state.store is not None
    try:
        answer = await update_program(
            name, body, who, state.store, state.clock, state, request, None
        )
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
        return JSONResponse(
            {"detail": [{"field": "query.segment", "reason": "no such segment"}]}, status_code=422
        )
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


# -- audit --------------------------------------------------------------------------------------


@router.get("/audit", response_model=None)
async def audit_page(
    request: Request, before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None
) -> Response:
    who = await guard(request, Role.AUDITOR, Role.OPERATOR)
    if isinstance(who, Response):
        return who
    state = _state(request)
    assert state.store is not None
    report = await state.store.audit.verify()
    page_size = 50
    head = report.checked
    last = (before_id - 1) if before_id is not None else head
    first_after = max(0, last - page_size)
    records = await state.store.audit.records(first_after, page_size)
    records = [r for r in records if r.id <= last]
    records.reverse()
    return render(
        request,
        "audit.html",
        who,
        report=report,
        records=records,
        older=first_after + 1 if first_after > 0 else None,
    )


__all__ = ["HOME", "PAGES", "STATIC_DIR", "router", "safe_next"]
