"""Liveness, readiness and metrics: for the orchestrator and Prometheus, without login.

``/health`` answers as long as the process serves HTTP. ``/ready`` asks the runtime (broker
connected, database reachable, last cycle recent) or, without a runtime, checks the database
itself; it is 503 with the reasons when anything is degraded. ``/metrics`` is the Prometheus
text of the runtime's registry (or the app's own) followed by the HTTP counters.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from api.deps import State
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
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(state: State) -> Response:
    return Response(state.metrics_text(), media_type=CONTENT_TYPE_LATEST)
