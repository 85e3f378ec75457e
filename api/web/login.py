"""Logging in and out, the start page (each role's home) and the language switch.

The login form posts with the CSRF token of the pre-session cookie (:mod:`api.web.session`);
logins are throttled like the API's token endpoint (:func:`api.login.throttled_login`: per
client address, overall, and the account's lockout). The logout revokes the session on the
server, not only the cookie in this browser.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import LoginThrottled, TokenKind
from api.login import throttled_login
from api.passwords import MAX_PASSWORD_LENGTH
from api.web.i18n import LANG_COOKIE, LANGUAGES
from api.web.render import HOME, render, safe_next, state_of
from api.web.session import (
    PRESESSION_COOKIE,
    clear_session,
    csrf_ok,
    ensure_presession,
    session_principal,
    set_session,
)
from kernel.errors import AuthError

router = APIRouter(include_in_schema=False)


@router.get("/", response_model=None)
async def home(request: Request) -> Response:
    principal = await session_principal(state_of(request), request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME[principal.role], status_code=303)


@router.get("/login", response_model=None)
async def login_page(request: Request, next: str | None = None) -> Response:
    principal = await session_principal(state_of(request), request)
    if principal is not None:
        return RedirectResponse(safe_next(next, HOME[principal.role]), status_code=303)
    # the CSRF token of the form is bound to the pre-session cookie: make it first
    probe = Response()
    value = ensure_presession(request, probe)
    request.cookies.setdefault(PRESESSION_COOKIE, value)
    response = render(request, "login.html", None, next=safe_next(next, ""), error_key=None)
    for header, content in probe.raw_headers:
        if header == b"set-cookie":
            response.raw_headers.append((header, content))
    return response


@router.post("/login", response_model=None)
async def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    state = state_of(request)
    if not csrf_ok(state, request, csrf):
        return render(
            request, "login.html", None, status_code=403, next=next, error_key="csrf_failed"
        )
    try:
        issued = await throttled_login(state, request, username, password, TokenKind.PAGE)
    except LoginThrottled as exc:
        slow_down = render(
            request, "login.html", None, status_code=429, next=next, error_key="login_slow_down"
        )
        slow_down.headers["Retry-After"] = str(exc.retry_after_s)
        return slow_down
    except AuthError:
        return render(
            request, "login.html", None, status_code=401, next=next, error_key="login_failed"
        )
    target = safe_next(next, HOME[issued.principal.role])
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, issued)
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    state = state_of(request)
    if not csrf_ok(state, request, csrf):
        return render(request, "error.html", None, status_code=403, message_key="csrf_failed")
    principal = await session_principal(state, request)
    if principal is not None:
        await state.auth().logout(principal)
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response


@router.get("/lang/{code}", response_model=None)
async def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    """Remember the language in a cookie (a year) and go back to the page."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True, path="/"
        )
    return response
