"""The pages' session: a cookie carrying the API's signed bearer token, and CSRF tokens.

* **Session:** ``waldstadt_session`` holds the token a login issues, of kind ``page`` (the
  API refuses it as a bearer token, and the pages refuse the API's tokens), HttpOnly,
  SameSite=Lax, Secure when the request came over https (behind a trusted proxy: its
  ``X-Forwarded-Proto``), and expires with the token. It names a row of ``user_sessions``:
  the logout revokes it on the server, so a copied cookie dies with the logout too. Each
  request checks it with the app's authenticator, so a disabled account, a changed password
  or a changed role is logged out at once.
* **CSRF:** every form POST carries a ``csrf`` field (JavaScript sends ``X-CSRF-Token``). The
  token is an HMAC under the app's secret of the session token, or, before a login, of a
  random ``waldstadt_presession`` cookie; a POST whose token does not match is refused with
  403. SameSite=Lax already keeps other sites' POSTs from carrying the session; the token also
  covers the login form (login CSRF) and browsers that ignore SameSite.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from api.auth import IssuedToken, Principal, TokenKind
from api.state import AppState
from kernel.errors import AuthError

SESSION_COOKIE = "waldstadt_session"
PRESESSION_COOKIE = "waldstadt_presession"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def _key(state: AppState) -> bytes:
    secret = state.settings.secret_key.get_secret_value().encode()
    return hashlib.sha256(b"waldstadt web csrf v1\0" + secret).digest()


def csrf_token(state: AppState, request: Request) -> str:
    """The token the forms of this request's page must send back."""
    basis = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE) or ""
    return hmac.new(_key(state), basis.encode(), "sha256").hexdigest()


def csrf_ok(state: AppState, request: Request, sent: str | None) -> bool:
    basis = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)
    if not basis or not sent:
        return False
    expected = hmac.new(_key(state), basis.encode(), "sha256").hexdigest()
    return hmac.compare_digest(expected, sent)


def ensure_presession(request: Request, response: Response) -> str:
    """The pre-login cookie (made when missing); the login form's CSRF token is bound to it."""
    value = request.cookies.get(PRESESSION_COOKIE)
    if value:
        return value
    value = secrets.token_urlsafe(24)
    response.set_cookie(
        PRESESSION_COOKIE,
        value,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return value


def set_session(request: Request, response: Response, issued: IssuedToken) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        issued.access_token,
        expires=issued.expires_at,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(PRESESSION_COOKIE, path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


async def session_principal(state: AppState, request: Request) -> Principal | None:
    """The caller behind the session cookie, or None (no cookie, expired, bad or disabled)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or state.store is None:
        return None
    try:
        return await state.auth().authenticate(token, TokenKind.PAGE)
    except AuthError:
        return None


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PRESESSION_COOKIE",
    "SESSION_COOKIE",
    "clear_session",
    "csrf_ok",
    "csrf_token",
    "ensure_presession",
    "session_principal",
    "set_session",
]
