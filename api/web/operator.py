"""The operator's page: the communities now, the 24 h plan, every asset, alarms, deletion
requests and overrides; an override is posted through the API's own audited route
(``POST /api/v1/commands/overrides``, journaled and audited)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.acting import acting_for
from api.auth import Principal, Role
from api.errors import field_errors
from api.live import assets_now, community_live
from api.routers.commands import create_override
from api.routers.privacy import request_statuses
from api.schemas.operations import OverrideCreate
from api.web import operator_views as views
from api.web.render import guard, render, state_of
from api.web.session import csrf_ok

router = APIRouter(include_in_schema=False)

#: The setpoint kinds an override may set (the API's ``OverrideCreate.kind``).
OVERRIDE_KINDS = ("battery_power_w", "power_limit_pct", "load_power_w", "dim_level_pct")


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
    state = state_of(request)
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
        pace=None if runtime is None else runtime.live(),
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


def _number(text: str) -> float | None:
    """A finite number written with a decimal point or comma, None otherwise."""
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _override(form: dict[str, str]) -> OverrideCreate | list[dict[str, str]]:
    """The API's request body from the form (minutes → seconds), or the fields' errors."""
    number = _number(form["value"])
    minutes = _number(form["expires_min"])
    errors: list[dict[str, str]] = []
    if number is None:
        errors.append({"field": "value", "reason": "not a number"})
    if minutes is None:
        errors.append({"field": "expires_min", "reason": "not a number"})
    if number is None or minutes is None:
        return errors
    data: dict[str, Any] = {
        "target": form["target"],
        "kind": form["kind"],
        "value": number,
        "expires_in_s": round(minutes * 60),
        "reason": form["reason"],
    }
    try:
        return OverrideCreate.model_validate(data)
    except ValidationError as exc:
        return field_errors(exc.errors())


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
    state = state_of(request)
    if not csrf_ok(state, request, csrf):
        return render(request, "error.html", who, status_code=403, message_key="csrf_failed")
    form = {"target": target, "kind": kind, "value": value, "expires_min": expires_min,
            "reason": reason}  # fmt: skip
    body = _override(form)
    if isinstance(body, list):
        return await _operator(request, who, errors=body, form=form, status_code=422)
    try:
        answer = await create_override(body, who, acting_for(state, request))
    except RequestValidationError as exc:
        return await _operator(
            request, who, errors=field_errors(exc.errors()), form=form, status_code=422
        )
    assert isinstance(answer, JSONResponse)
    created = json.loads(bytes(answer.body))
    return RedirectResponse(
        f"/operator?override={quote(created['command_id'], safe='')}", status_code=303
    )
