"""Acting requests: done once per ``Idempotency-Key``, at one instant of the service clock.

A route builds its effect as an async function of the instant it acts at, returning
``(status_code, body)``, and hands it to :meth:`Acting.once`; with a key, a repeat (same
account, same key, same method, path and body) gets the first response again, marked
``Idempotent-Replayed: true``. The audit record (:func:`api.audit.record_action`) takes the
same instant::

    async def create_override(body: OverrideCreate, caller: Operator, acting: ActingDep):
        async def act(now: datetime) -> tuple[int, CommandPublic]:
            ...
            await record_action(acting.store, acting.state.audit_key, caller,
                                "command.override", body.target,
                                result="accepted", now=now, old_value=old, new_value=new)
            return 201, public(stored)

        return await acting.once(caller, act)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.auth import Principal
from api.deps import ClockDep, IdempotencyKey, State, StoreDep
from api.errors import conflict
from api.limits import IdempotencyCache, IdempotencyConflict, StoredResponse
from api.state import AppState
from kernel.clock import Clock
from store import Store


async def once(
    state: AppState,
    caller: Principal,
    request: Request,
    key: str | None,
    act: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """``act()`` once per ``key`` of the caller (every time without a key)."""
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


@dataclass(frozen=True)
class Acting:
    """What an acting route needs besides its body and its caller: the app's state, the open
    store, the service clock, the request (the idempotency fingerprint) and the key."""

    state: AppState
    store: Store
    clock: Clock
    request: Request
    key: str | None = None

    async def once(
        self, caller: Principal, act: Callable[[datetime], Awaitable[tuple[int, Any]]]
    ) -> JSONResponse:
        """``act(now)`` once per key (see :func:`once`), ``now`` read from the service clock
        when it runs (a replay does not run it)."""

        async def run() -> tuple[int, Any]:
            return await act(self.clock.now())

        return await once(self.state, caller, self.request, self.key, run)


async def get_acting(
    state: State, store: StoreDep, clock: ClockDep, request: Request, key: IdempotencyKey = None
) -> Acting:
    return Acting(state, store, clock, request, key)


#: The dependency of acting routes (it carries the optional ``Idempotency-Key`` header).
ActingDep = Annotated[Acting, Depends(get_acting)]


def acting_for(state: AppState, request: Request) -> Acting:
    """An :class:`Acting` for a page's form, which sends no ``Idempotency-Key``."""
    if state.store is None:
        raise RuntimeError("the store is not open")
    return Acting(state, state.store, state.clock, request)


__all__ = ["Acting", "ActingDep", "acting_for", "get_acting", "once"]
