"""Errors as JSON: every error response has a ``detail``.

* 422 (bad input): ``{"detail": [{"field": "body.username", "reason": "Field required"}]}`` —
  one entry per problem, naming the field (where it came from, then its path) and the reason.
* 401 / 403 / 404 / 409 / 429: ``{"detail": "why"}``; 401 carries ``WWW-Authenticate: Bearer``
  and 429 ``Retry-After``.

Waldstadt's own exceptions are translated here, where they leave the app: a
:class:`~kernel.errors.ConfigError` is a 422 naming its field, a
:class:`~store.errors.StoreUnavailable` a 503; nothing else from the store reaches a client as
more than a generic 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kernel.errors import ConfigError
from store.errors import StoreUnavailable

log = logging.getLogger(__name__)


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic/FastAPI error dicts → ``[{"field": "body.username", "reason": "..."}]``."""
    out: list[dict[str, str]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "request", "reason": msg})
    return out


def document_field_errors(app: FastAPI) -> None:
    """Publish the 422 body the app really sends (``{"detail": [{"field", "reason"}]}``) in the
    OpenAPI schema instead of FastAPI's default ``loc``/``msg``/``type`` shape."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default()
        schemas = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas.pop("ValidationError", None)
            schemas["FieldError"] = {
                "title": "FieldError",
                "type": "object",
                "properties": {
                    "field": {"type": "string", "examples": ["body.username"]},
                    "reason": {"type": "string", "examples": ["Field required"]},
                },
                "required": ["field", "reason"],
            }
            schemas["HTTPValidationError"] = {
                "title": "HTTPValidationError",
                "type": "object",
                "properties": {
                    "detail": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/FieldError"},
                    }
                },
                "required": ["detail"],
            }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def forbidden(reason: str = "your role may not do this") -> HTTPException:
    return HTTPException(403, reason)


def not_found(what: str = "not found") -> HTTPException:
    return HTTPException(404, what)


def conflict(reason: str) -> HTTPException:
    return HTTPException(409, reason)


def too_many_requests(retry_after_s: int) -> HTTPException:
    return HTTPException(
        429, "too many requests; slow down", headers={"Retry-After": str(retry_after_s)}
    )


def bad_field(field: str, reason: str) -> RequestValidationError:
    """A 422 for a check that is not expressible in a schema (e.g. start after end)."""
    return RequestValidationError([{"loc": tuple(field.split(".")), "msg": reason}])


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers or None
    )


async def _config(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    return JSONResponse({"detail": [{"field": exc.field, "reason": exc.reason}]}, status_code=422)


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return JSONResponse(
        {"detail": "the database is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ConfigError, _config)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)


__all__ = [
    "bad_field",
    "conflict",
    "field_errors",
    "forbidden",
    "install_error_handlers",
    "not_found",
    "too_many_requests",
    "unauthorized",
]
