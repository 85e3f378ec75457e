"""Dependencies as ``Annotated`` aliases.

* ``State``, ``StoreDep``, ``ClockDep`` — the app's state, its open store, the service clock;
* ``Caller`` — the authenticated :class:`~api.auth.Principal` (401 without or with a bad
  token; 429 beyond the account's rate limit);
* ``require(*roles)`` — a dependency that also checks the role (403 otherwise); the aliases
  ``Operator``, ``Auditing`` (auditor or operator), ``MemberOrOperator`` use it;
* ``IdempotencyKey`` — the optional ``Idempotency-Key`` header of acting POSTs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from api.auth import Principal, Role
from api.errors import forbidden, too_many_requests, unauthorized
from api.state import AppState
from kernel.clock import Clock
from kernel.errors import AuthError
from store import Store

#: The largest row id the databases store (signed 64-bit): a bigger id in a path or query is a
#: 422, not a driver overflow.
ROW_ID_MAX = 2**63 - 1
TOKEN_URL = "/api/v1/auth/token"


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.waldstadt
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_store(state: State) -> Store:
    if state.store is None:
        raise HTTPException(503, "the database is not open (the app is not running)")
    return state.store


async def get_clock(state: State) -> Clock:
    return state.clock


StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]

_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def current_principal(
    state: State, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    if not token:
        raise unauthorized("not authenticated: send Authorization: Bearer <token>")
    try:
        principal = await state.auth().authenticate(token)
    except AuthError as exc:
        raise unauthorized(str(exc)) from exc
    wait = state.api_limiter.take(f"account:{principal.username}", state.auth_clock.monotonic())
    if wait > 0:
        raise too_many_requests(max(1, math.ceil(wait)))
    return principal


Caller = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets only ``roles`` through (403 for the others)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    async def check(caller: Caller) -> Principal:
        if caller.role not in allowed:
            raise forbidden(f"only {names} may do this")
        return caller

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Auditing = Annotated[Principal, Depends(require(Role.AUDITOR, Role.OPERATOR))]
MemberOrOperator = Annotated[Principal, Depends(require(Role.MEMBER, Role.OPERATOR))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat the request with the same key to get the first response again "
        "instead of acting twice (kept 24 h).",
    ),
]

__all__ = [
    "Auditing",
    "Caller",
    "ClockDep",
    "IdempotencyKey",
    "MemberOrOperator",
    "Operator",
    "State",
    "StoreDep",
    "current_principal",
    "get_state",
    "get_store",
    "require",
]
