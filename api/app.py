"""``create_app(settings)``: the FastAPI application, importable without side effects.

::

    app = create_app(load_settings())                    # serves from the store alone
    app = create_app(settings, runtime=service)          # /ready and /metrics ask the service
    app = create_app(settings, store=opened_store)       # share a Store the caller opened

The lifespan opens ``Store(settings.database_url)`` unless a store is given, and closes only
what it opened; either way it seals an audit log written before the audit key
(:meth:`store.audit.AuditRepository.seal`). Nothing happens at import or in ``create_app``
itself: no database, no socket, no thread.

Every request first passes :mod:`api.middleware`: the client address (trusted proxies only),
the security headers and the body-size limit of its route (:data:`BODY_LIMITS`), before any
route, dependency or authentication runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Authenticator
from api.deps import TOKEN_URL
from api.errors import document_field_errors, install_error_handlers
from api.middleware import BodyLimit, BodyLimits, SecurityHeaders, TrustedProxies
from api.routers import (
    alarms,
    assets,
    audit,
    auth,
    commands,
    community,
    exports,
    lighting,
    members,
    plans,
    privacy,
    settlement,
    system,
)
from api.routers.lighting.backtest import MAX_CSV_BYTES
from api.runtime import Runtime
from api.state import AppState, HttpMetrics
from api.web import STATIC_DIR
from api.web import router as pages_router
from scheduler.settings import Settings
from store import Store

API_PREFIX = "/api/v1"
_KIB = 1024
_MIB = 1024 * _KIB

#: Largest request body per route, in bytes: 1 MiB unless named here. Logins are small
#: forms; the backtest takes its CSV (plus the form's framing); a whole lighting
#: configuration of a large town (10,000 luminaires ≈ 2 MB of JSON) is the largest document.
BODY_LIMITS = BodyLimits(
    default_bytes=_MIB,
    exact={
        TOKEN_URL: 16 * _KIB,
        "/login": 16 * _KIB,
        "/logout": 16 * _KIB,
        f"{API_PREFIX}/lighting/backtest": MAX_CSV_BYTES + 64 * _KIB,
        f"{API_PREFIX}/lighting/config": 16 * _MIB,
    },
)

DESCRIPTION = """\
Waldstadt's web API: the energy-sharing community (balances, statements, plans, alarms,
settlement runs), the audit trail, and accounts.

Authenticate with `POST /api/v1/auth/token` (OAuth2 password form) and send the token as
`Authorization: Bearer …`. Roles: **operator**, **member** (sees only their own member's data;
community figures only as aggregates over at least five members), **lighting_engineer**,
**auditor**. Errors are JSON with a `detail`; a 422 names each bad field and the reason.
"""


class HttpMetricsMiddleware:
    """Counts requests by route *template* (``/api/v1/members/{member_id}/balances``), so a
    scan over ids cannot blow up the label set; unmatched paths count as ``(unmatched)``."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.seconds.labels(template).observe(time.perf_counter() - started)


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    store: Store | None = None,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """The app for ``settings``.

    ``store``: an already opened store to use (not closed by the app). ``authenticator``:
    replaces the local accounts (e.g. an OIDC provider's token validation).
    """
    state = AppState(settings=settings, runtime=runtime, store=store, authenticator=authenticator)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if store is None:
                state.store = await stack.enter_async_context(Store(settings.database_url))
                # day and month views read the day totals of the configured zone
                await state.store.day_totals.ensure_zone(settings.timezone, now=state.clock.now())
            assert state.store is not None
            await state.store.audit.seal(state.audit_key, state.clock.now())
            try:
                yield
            finally:
                if store is None:
                    state.store = None
                if authenticator is None:
                    state.authenticator = None

    app = FastAPI(
        title="Waldstadt",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.waldstadt = state
    install_error_handlers(app)
    document_field_errors(app)
    # the last added runs first: proxies → headers → body limit → metrics → routes
    app.add_middleware(HttpMetricsMiddleware, metrics=state.http_metrics)
    app.add_middleware(BodyLimit, limits=BODY_LIMITS)
    app.add_middleware(SecurityHeaders, hsts_max_age_s=settings.hsts_max_age_s)
    app.add_middleware(TrustedProxies, networks=settings.trusted_proxy_networks)
    include_routes(app)
    return app


def include_routes(app: FastAPI) -> None:
    """The API's routers, then the pages and their static files."""
    for module in (
        system,
        auth,
        members,
        community,
        exports,
        assets,
        plans,
        alarms,
        commands,
        settlement,
        audit,
        privacy,
    ):
        app.include_router(module.router)
    for router in lighting.ROUTERS:
        app.include_router(router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


__all__ = ["API_PREFIX", "BODY_LIMITS", "create_app"]
