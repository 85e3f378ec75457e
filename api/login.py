"""The one login path of the API's token endpoint and the login page: throttled per client
address and overall before any password is hashed, then the authenticator (which refuses a
locked account before hashing too).

Order of the checks, cheapest first: the client's bucket, the global bucket, the account's
lock (a database read), then one argon2 check in the bounded pool. A refusal at any step is
:class:`~api.auth.LoginThrottled` with the seconds to wait (429 with ``Retry-After``); a full
hashing pool is one as well.
"""

from __future__ import annotations

from starlette.requests import Request

from api.auth import IssuedToken, LoginThrottled, TokenKind
from api.passwords import PoolBusy
from api.state import AppState


def client_of(request: Request) -> str:
    """The client address (``X-Forwarded-For`` already resolved by
    :class:`api.middleware.TrustedProxies` where the peer is a trusted proxy)."""
    return request.client.host if request.client else "unknown"


async def throttled_login(
    state: AppState, request: Request, username: str, password: str, kind: TokenKind
) -> IssuedToken:
    """Log in through every throttle; :class:`LoginThrottled` or ``AuthError`` if refused."""
    now_s = state.auth_clock.monotonic()
    wait_s = state.login_limiter.take(f"client:{client_of(request)}", now_s)
    if wait_s > 0:
        raise LoginThrottled("too many logins from this address", wait_s)
    wait_s = state.login_global_limiter.take("all", now_s)
    if wait_s > 0:
        raise LoginThrottled("too many logins at the moment", wait_s)
    try:
        return await state.auth().login(username, password, kind)
    except PoolBusy as exc:
        raise LoginThrottled("too many logins at the moment", exc.retry_after_s) from exc


__all__ = ["client_of", "throttled_login"]
