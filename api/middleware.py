"""What every request passes before any route: the real client address, the body-size limit,
the security headers. Plain ASGI middleware (no buffering of bodies).

* :class:`TrustedProxies`: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only
  when the connection comes from a configured proxy (``WALDSTADT_TRUSTED_PROXIES``); the
  client is then the right-most address in ``X-Forwarded-For`` that is not itself a trusted
  proxy (the left-most entries are whatever the client claimed). Otherwise the headers are
  ignored and the client is the connection's peer. Login throttling and the loopback-only
  ``/metrics`` read the address this leaves in ``scope["client"]``.
* :class:`BodyLimit`: a request body larger than its route's limit (:class:`BodyLimits`) is
  refused with 413 before the app reads any of it when ``Content-Length`` says so, and, for a
  body without a length (chunked), as soon as the bytes read pass the limit, so at most the
  limit is ever held in memory. It runs before authentication: an anonymous 200 MB body costs
  nothing.
* :class:`SecurityHeaders`: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer``, ``X-Frame-Options: DENY``, a Content-Security-Policy (a strict one for the
  API's JSON; the pages set their own, ``/docs`` one that lets Swagger UI load from its CDN)
  and, on https, ``Strict-Transport-Security`` (``WALDSTADT_HSTS_MAX_AGE_S``; 0 sends none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = IPv4Network | IPv6Network

#: Content-Security-Policy of responses that are not pages: nothing may load, nothing frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: ``/docs`` (Swagger UI from its CDN, one inline start-up script).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def is_trusted(host: str | None, networks: Iterable[Network]) -> bool:
    addr = _address(host or "")
    return addr is not None and any(addr in net for net in networks)


def forwarded_client(peer: str, forwarded_for: list[str], networks: tuple[Network, ...]) -> str:
    """The client behind the trusted ``peer``: the right-most ``X-Forwarded-For`` entry that
    is not a trusted proxy (the left-most entry if all are)."""
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


class TrustedProxies:
    def __init__(self, app: ASGIApp, networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            client = scope.get("client")
            if client is not None and is_trusted(client[0], self.networks):
                headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
                xff = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
                proto = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto"]
                scope = dict(scope)
                scope["client"] = (forwarded_client(client[0], xff, self.networks), 0)
                if proto and proto[-1].split(",")[-1].strip() in ("http", "https"):
                    scope["scheme"] = proto[-1].split(",")[-1].strip()
        await self.app(scope, receive, send)


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Largest request body per path, in bytes: ``exact`` paths, then ``prefixes``, else
    ``default_bytes``."""

    default_bytes: int = 1024 * 1024
    exact: Mapping[str, int] = field(default_factory=dict)
    prefixes: tuple[tuple[str, int], ...] = ()

    def for_path(self, path: str) -> int:
        if path in self.exact:
            return self.exact[path]
        for prefix, limit in self.prefixes:
            if path.startswith(prefix):
                return limit
        return self.default_bytes


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes its limit (the app's handler answers 413)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, f"request body larger than {limit_bytes} bytes")


async def _refuse(send: Send, limit_bytes: int) -> None:
    body = json.dumps({"detail": BodyTooLarge(limit_bytes).detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                declared = int(value) if value.isdigit() else None
                if declared is None or declared > limit:
                    await _refuse(send, limit)
                    return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, limit)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts_max_age_s: int) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age_s}".encode() if hsts_max_age_s > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        csp = DOCS_CSP if scope["path"] == "/docs" else API_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", csp.encode()),
                ]
                if https and self.hsts is not None:
                    extra.append((b"strict-transport-security", self.hsts))
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


__all__ = [
    "API_CSP",
    "DOCS_CSP",
    "BodyLimit",
    "BodyLimits",
    "BodyTooLarge",
    "SecurityHeaders",
    "TrustedProxies",
    "forwarded_client",
    "is_trusted",
]
