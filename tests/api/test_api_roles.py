"""The role × route matrix: every route of the app, tried without a token and with each role.

The expected table is written out here; the test fails if the app has a route the table does
not name (a new route cannot be forgotten) or the table names one the app does not have.
"Allowed" means the request got past authentication and the role check (any status but 401
and 403: a 404 for a missing plan is an allowed request); a refused one must be exactly 401
without a token and 403 with a token of the wrong role.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from api.auth import Role
from tests.api.conftest import PASSWORD, ROLE_USER, bearer, login

PUBLIC = frozenset({None, *Role})
ALL_ROLES = frozenset(Role)
OP = Role.OPERATOR
MEMBER = Role.MEMBER
LIGHT = Role.LIGHTING_ENGINEER
AUDITOR = Role.AUDITOR

#: (method, path template) → who may call it (None: without a token).
EXPECTED: dict[tuple[str, str], frozenset[Role | None]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): ALL_ROLES,
    ("GET", "/api/v1/me"): ALL_ROLES,
    ("GET", "/api/v1/members/{member_id}/balances"): frozenset({OP, MEMBER}),
    ("GET", "/api/v1/members/{member_id}/statements"): frozenset({OP, MEMBER}),
    ("GET", "/api/v1/members/{member_id}/personal-data"): frozenset({MEMBER}),
    ("POST", "/api/v1/members/{member_id}/deletion-request"): frozenset({MEMBER}),
    ("GET", "/api/v1/community/balances"): frozenset({OP, MEMBER}),
    ("GET", "/api/v1/community/now"): frozenset({OP}),
    ("GET", "/api/v1/exports/balances.csv"): frozenset({OP, MEMBER}),
    ("GET", "/api/v1/assets"): frozenset({OP}),
    ("GET", "/api/v1/assets/{device}"): frozenset({OP}),
    ("GET", "/api/v1/plans"): frozenset({OP}),
    ("GET", "/api/v1/plans/current"): frozenset({OP}),
    ("GET", "/api/v1/plans/{plan_id}"): frozenset({OP}),
    ("GET", "/api/v1/alarms"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/alarms/history"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/commands"): frozenset({OP}),
    ("GET", "/api/v1/commands/{command_id}"): frozenset({OP}),
    ("POST", "/api/v1/commands/overrides"): frozenset({OP}),
    ("GET", "/api/v1/settlement/runs"): frozenset({OP}),
    ("GET", "/api/v1/settlement/runs/{run_id}"): frozenset({OP}),
    ("GET", "/api/v1/privacy/deletion-requests"): frozenset({OP}),
    ("POST", "/api/v1/privacy/erasures"): frozenset({OP}),
    ("GET", "/api/v1/audit/records"): frozenset({OP, AUDITOR}),
    ("GET", "/api/v1/audit/verify"): frozenset({OP, AUDITOR}),
    ("GET", "/api/v1/audit/head"): frozenset({OP, AUDITOR}),
    ("GET", "/api/v1/lighting/config"): frozenset({OP, LIGHT}),
    ("PUT", "/api/v1/lighting/config"): frozenset({LIGHT}),
    ("GET", "/api/v1/lighting/config/versions"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/lighting/programs"): frozenset({OP, LIGHT}),
    ("POST", "/api/v1/lighting/programs"): frozenset({LIGHT}),
    ("GET", "/api/v1/lighting/programs/{program_name}"): frozenset({OP, LIGHT}),
    ("PUT", "/api/v1/lighting/programs/{program_name}"): frozenset({LIGHT}),
    ("GET", "/api/v1/lighting/calendars"): frozenset({OP, LIGHT}),
    ("POST", "/api/v1/lighting/calendars"): frozenset({LIGHT}),
    ("GET", "/api/v1/lighting/calendars/{calendar_name}"): frozenset({OP, LIGHT}),
    ("PUT", "/api/v1/lighting/calendars/{calendar_name}"): frozenset({LIGHT}),
    ("GET", "/api/v1/lighting/segments"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/lighting/segments/{segment_id}"): frozenset({OP, LIGHT}),
    ("PUT", "/api/v1/lighting/segments/{segment_id}/assignment"): frozenset({LIGHT}),
    ("GET", "/api/v1/lighting/luminaires"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/lighting/luminaires/{luminaire_id}"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/lighting/luminaires/{luminaire_id}/reason"): frozenset({OP, LIGHT}),
    ("POST", "/api/v1/lighting/preview/night"): frozenset({OP, LIGHT}),
    ("POST", "/api/v1/lighting/preview/year"): frozenset({OP, LIGHT}),
    ("POST", "/api/v1/lighting/backtest"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/lighting/savings"): frozenset({OP, LIGHT}),
    ("GET", "/api/v1/lighting/failures"): frozenset({OP, LIGHT}),
}

PATH_VALUES = {
    "member_id": "m01",
    "plan_id": "1",
    "command_id": "c-1",
    "run_id": "1",
    "segment_id": "s1",
    "luminaire_id": "l1",
    "program_name": "Wohnstraße",
    "calendar_name": "default",
    "device": "h01-battery",
}
#: What a well-formed request to each acting route sends.
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/commands/overrides": {
        "json": {
            "target": "h01-battery",
            "kind": "battery_power_w",
            "value": 0,
            "expires_in_s": 600,
            "reason": "test",
        }
    },
    "/api/v1/members/{member_id}/deletion-request": {"json": {}},
    "/api/v1/privacy/erasures": {"json": {"member_id": "m99", "reason": "test"}},
    "/api/v1/lighting/config": {"json": {"document": {"programs": [], "calendars": []}}},
    "/api/v1/lighting/programs": {
        "json": {"name": "P", "steps": [{"name": "on", "anchor": "sunset", "level_pct": 50}]}
    },
    "/api/v1/lighting/programs/{program_name}": {
        "json": {"steps": [{"name": "on", "anchor": "sunset", "level_pct": 50}]}
    },
    "/api/v1/lighting/calendars": {"json": {"name": "c", "default_program": "P"}},
    "/api/v1/lighting/calendars/{calendar_name}": {"json": {"default_program": "P"}},
    "/api/v1/lighting/segments/{segment_id}/assignment": {"json": {"calendar": "c"}},
    "/api/v1/lighting/preview/night": {"json": {"segment_id": "s1", "night": "2026-11-25"}},
    "/api/v1/lighting/preview/year": {"json": {"segment_id": "s1", "year": 2026}},
    "/api/v1/lighting/backtest": {
        "files": {"file": ("t.csv", b"ts,segment_id,count\n", "text/csv")},
        "data": {"segment_id": "s1"},
    },
}
QUERY = {"/api/v1/exports/balances.csv": {"member_id": "m01"}}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every route of the app, from its OpenAPI schema (FastAPI's included routers are lazy,
    so ``app.routes`` does not list the routes themselves)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_no_route_hides_from_the_schema(app: FastAPI) -> None:
    plain = {
        getattr(r, "path", None)
        for r in app.routes
        if not hasattr(r, "original_router")
        and not (isinstance(r, Mount) and isinstance(r.app, StaticFiles))
    }
    assert plain == {"/openapi.json", "/docs", "/docs/oauth2-redirect"}


def test_the_table_names_every_route_of_the_app(app: FastAPI) -> None:
    assert app_routes(app) == set(EXPECTED)


async def call(client: httpx.AsyncClient, method: str, path: str, role: Role | None) -> int:
    url = path.format(**PATH_VALUES)
    headers = {} if role is None else bearer(ROLE_USER[role])
    if path == "/api/v1/auth/token":
        user = ROLE_USER[role] if role is not None else "anna"
        r = await client.post(url, data={"username": user, "password": PASSWORD})
        return r.status_code
    if path == "/api/v1/auth/logout" and role is not None:
        # a session of its own: the shared one of bearer() must outlive this call
        headers = {"Authorization": f"Bearer {await login(client, ROLE_USER[role])}"}
    kwargs = BODIES.get(path, {})
    r = await client.request(method, url, headers=headers, params=QUERY.get(path), **kwargs)
    assert r.status_code < 500, (method, path, role, r.text)
    return r.status_code


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r or "anonymous")
async def test_each_role_reaches_exactly_its_routes(
    app: FastAPI, client: httpx.AsyncClient, role: Role | None
) -> None:
    allowed: set[tuple[str, str]] = set()
    refusals: dict[tuple[str, str], int] = {}
    for method, path in sorted(app_routes(app)):
        status = await call(client, method, path, role)
        if status in (401, 403):
            refusals[(method, path)] = status
        else:
            allowed.add((method, path))
    expected = {route for route, roles in EXPECTED.items() if role in roles}
    assert allowed == expected
    refused_with = 401 if role is None else 403
    assert set(refusals.values()) <= {refused_with}, refusals
