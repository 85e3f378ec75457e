"""What every page shares: the templates, the navigation per role, rendering in the
visitor's language and the site's time zone, and the guard that lets only a role in.

Without a session a page redirects to ``/login?next=…``; a role that may not open a page
gets 403. Numbers, dates and readings are formatted by the page's language (German default,
English).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import Principal, Role
from api.state import AppState
from api.web.i18n import LANGUAGES, language, translator
from api.web.session import csrf_token, session_principal
from kernel.readings import Reading

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

#: Which pages each role may open, in the order of the navigation.
PAGES: dict[str, tuple[Role, ...]] = {
    "/member": (Role.MEMBER,),
    "/operator": (Role.OPERATOR,),
    "/lighting": (Role.LIGHTING_ENGINEER,),
    "/audit": (Role.AUDITOR, Role.OPERATOR),
}
NAV_KEYS = {
    "/member": "nav_member",
    "/operator": "nav_operator",
    "/lighting": "nav_lighting",
    "/audit": "nav_audit",
}
HOME: dict[Role, str] = {
    Role.MEMBER: "/member",
    Role.OPERATOR: "/operator",
    Role.LIGHTING_ENGINEER: "/lighting",
    Role.AUDITOR: "/audit",
}

#: What the pages may be framed by and load (nothing but this site): scripts and styles from
#: /static only (the inline ``<script type="application/json">`` blocks are data, not code),
#: forms post to this site only, no plugins, no ``<base>``, never framed. The other headers
#: (nosniff, Referrer-Policy, HSTS) come from :class:`api.middleware.SecurityHeaders`.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}


def state_of(request: Request) -> AppState:
    """The app's state (the pages are plain routes, not API dependencies)."""
    state: AppState = request.app.state.waldstadt
    return state


def tz_of(state: AppState) -> ZoneInfo:
    """The zone the pages show times in."""
    return ZoneInfo(state.settings.timezone)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path of this site: no scheme, no host, no ``//`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def formatters(lang: str, tz: ZoneInfo) -> dict[str, Callable[..., str]]:
    """The templates' ``local`` (a time in the site's zone), ``num`` (a number in the
    language's notation, a dash for none) and ``reading`` (power in kW, energy in kWh)."""

    def local(value: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
        return "—" if value is None else value.astimezone(tz).strftime(fmt)

    def num(value: float | str | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        number = float(value)
        if math.isnan(number):
            return "—"
        text = f"{number:,.{digits}f}"
        if lang == "de":
            text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
        return text

    def reading(r: Reading) -> str:
        """A reading with its unit, power and energy in k (a dash when it has no value)."""
        if r.value is None:
            return f"{r.channel}: —"
        scaled = {"W": ("kW", 1000.0, 2), "Wh": ("kWh", 1000.0, 1)}
        unit, divisor, digits = scaled.get(r.unit, (r.unit, 1.0, 1))
        return f"{r.channel}: {num(r.value / divisor, digits)} {unit}".rstrip()

    return {"local": local, "num": num, "reading": reading}


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` with the navigation of the principal's role and ``context``."""
    state = state_of(request)
    lang = language(request)
    nav = []
    if principal is not None:
        nav = [(path, NAV_KEYS[path]) for path, roles in PAGES.items() if principal.role in roles]
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "t": translator(lang),
            "lang": lang,
            "languages": LANGUAGES,
            "principal": principal,
            "nav": nav,
            "path": request.url.path,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "csrf": csrf_token(state, request),
            **formatters(lang, tz_of(state)),
            "timezone": state.settings.timezone,
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


async def guard(request: Request, *roles: Role) -> Principal | Response:
    """The session's principal if its role may open the page; else the redirect to the login
    (no or an expired session) or a 403 page."""
    principal = await session_principal(state_of(request), request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if principal.role not in roles:
        return render(request, "error.html", principal, status_code=403, message_key="forbidden")
    return principal


__all__ = [
    "HOME",
    "PAGES",
    "STATIC_DIR",
    "TEMPLATES",
    "formatters",
    "guard",
    "render",
    "safe_next",
    "state_of",
    "tz_of",
]
