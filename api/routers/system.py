"""Liveness, readiness and metrics: for the orchestrator and Prometheus, without login.

``/health`` answers as long as the process serves HTTP. ``/ready`` asks the runtime (broker
connected, database reachable, last cycle recent) or, without a runtime, checks the database
itself; it is 503 with the reasons when anything is degraded. ``/metrics`` is the Prometheus
text of the runtime's registry (or the app's own) followed by the HTTP counters. It names
devices (which households have a battery or a wallbox), so it is not public: with
``WALDSTADT_METRICS_TOKEN`` set it wants ``Authorization: Bearer <that token>`` from
anywhere; without one it answers the loopback address only (a Prometheus on the same host,
or a tunnel), 403 for everyone else. Behind a reverse proxy on the same host, configure it
as a trusted proxy (or set the token), or every request looks local.
"""

from __future__ import annotations

import asyncio
import hmac
from ipaddress import ip_address

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from api.deps import State
from api.errors import forbidden, unauthorized
from kernel.errors import WaldstadtError
from scheduler.health import Check, Readiness

router = APIRouter(tags=["system"])

#: How long the database check of ``/ready`` may take, in s.
DB_CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class ReadinessPublic(BaseModel):
    status: str = Field(examples=["degraded"])
    reasons: list[str] = Field(examples=[["database: unreachable: connection refused"]])
    checks: dict[str, dict[str, object]]


@router.get("/health", response_model=Health, summary="Liveness: the process serves HTTP")
async def health() -> Health:
    return Health(status="ok")


async def database_check(state: State) -> Check:
    """The database answers a real query (:meth:`store.Store.ping`) within
    :data:`DB_CHECK_TIMEOUT_S`."""
    store = state.store
    if store is None:
        return Check("database", False, "not open")
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_S):
            await store.ping()
    except TimeoutError:
        return Check("database", False, f"no answer within {DB_CHECK_TIMEOUT_S} s")
    except (WaldstadtError, RuntimeError) as exc:
        return Check("database", False, f"unreachable: {exc}")
    return Check("database", True, "reachable")


@router.get(
    "/ready",
    response_model=ReadinessPublic,
    summary="Readiness: 200 when every check passes, 503 with the reasons otherwise",
    responses={503: {"model": ReadinessPublic, "description": "degraded"}},
)
async def ready(state: State) -> JSONResponse:
    if state.runtime is not None:
        readiness = await state.runtime.readiness()
    else:
        readiness = Readiness((await database_check(state),))
    code = 200 if readiness.status == "ok" else 503
    return JSONResponse(readiness.as_dict(), status_code=code)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        401: {"description": "WALDSTADT_METRICS_TOKEN is set and was not sent"},
        403: {"description": "no metrics token is set and the caller is not on loopback"},
    },
)
async def metrics(state: State, request: Request) -> Response:
    expected = state.settings.metrics_token
    if expected is not None:
        sent = request.headers.get("authorization", "")
        want = f"Bearer {expected.get_secret_value()}"
        if not hmac.compare_digest(sent.encode(), want.encode()):
            raise unauthorized("metrics need Authorization: Bearer <WALDSTADT_METRICS_TOKEN>")
    elif not _loopback(request.client.host if request.client else None):
        raise forbidden("metrics answer on loopback only; set WALDSTADT_METRICS_TOKEN")
    return Response(state.metrics_text(), media_type=CONTENT_TYPE_LATEST)


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ip_address(host).is_loopback
    except ValueError:
        return False
