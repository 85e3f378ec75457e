"""Acting POSTs with an optional ``Idempotency-Key``: done once, replayed after.

A route builds its effect as an async function returning ``(status_code, body)`` and hands it
to :func:`once`; with a key, a repeat (same account, same key, same method, path and body)
gets the first response again, marked ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.auth import Principal
from api.errors import conflict
from api.limits import IdempotencyCache, IdempotencyConflict, StoredResponse
from api.state import AppState


async def once(
    state: AppState,
    caller: Principal,
    request: Request,
    key: str | None,
    act: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    if key is None:
        status, body = await act()
        return JSONResponse(jsonable_encoder(body), status_code=status)
    cache = state.idempotency
    fingerprint = IdempotencyCache.fingerprint(
        request.method, request.url.path, await request.body()
    )
    now_s = state.auth_clock.monotonic()
    try:
        stored = await cache.begin(caller.username, key, fingerprint, now_s)
    except IdempotencyConflict as exc:
        raise conflict(exc.reason) from exc
    if stored is not None:
        return JSONResponse(
            stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )
    try:
        status, body = await act()
    except BaseException:
        await cache.finish(caller.username, key, None)
        raise
    encoded = jsonable_encoder(body)
    await cache.finish(caller.username, key, StoredResponse(status, encoded))
    return JSONResponse(encoded, status_code=status)


__all__ = ["once"]
