"""What the lighting routers share: who may read and who may change, which configuration
applies, and the validation of documents and path names.

Which configuration applies: the latest stored version when it is based on the running site
file's ``lighting:`` section (or neither has one), else the site file's section (see
:func:`store.lighting_config.effective_lighting`). The pages choose it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.auth import Principal, Role
from api.deps import require
from api.errors import not_found
from api.runtime import Runtime, site_lighting
from store import Store
from store.lighting_config import EffectiveLighting, effective_lighting

PREFIX = "/api/v1/lighting"

LightingReader = Annotated[Principal, Depends(require(Role.LIGHTING_ENGINEER, Role.OPERATOR))]
LightingEngineer = Annotated[Principal, Depends(require(Role.LIGHTING_ENGINEER))]

NO_CONFIG = (
    "no lighting configuration: none is stored, and no running service has a site file "
    "with a lighting section"
)
Name = Annotated[str, Path(min_length=1, max_length=200)]
Id = Annotated[str, Path(min_length=1, max_length=128)]

M = TypeVar("M", bound=BaseModel)


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def lighting_router() -> APIRouter:
    """A router of one lighting resource (all share the prefix and the OpenAPI tag)."""
    return APIRouter(prefix=PREFIX, tags=["lighting"])


async def configured(runtime: Runtime | None, store: Store) -> EffectiveLighting | None:
    """The configuration that applies now, None when there is none."""
    return await effective_lighting(store.lighting_config, site_lighting(runtime), announce=False)


async def current(runtime: Runtime | None, store: Store) -> EffectiveLighting:
    """The configuration that applies now (404 when there is none)."""
    chosen = await configured(runtime, store)
    if chosen is None:
        raise not_found(NO_CONFIG)
    return chosen


def validated(model: type[M], data: Any, prefix: Sequence[str | int]) -> M:
    """``model`` from ``data``, or a 422 whose fields start with ``prefix`` (e.g. ``config``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{"loc": (*prefix, *err["loc"]), "msg": err["msg"]} for err in exc.errors()]
        ) from exc


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model (as stored in the lighting document)."""
    out: dict[str, Any] = model.model_dump(mode="json")
    return out


def find(items: Sequence[Named], name: str) -> int | None:
    """The index of the item called ``name``, None when there is none."""
    return next((i for i, item in enumerate(items) if item.name == name), None)


def named(items: Sequence[N], name: str, kind: str) -> N:
    """The item called ``name`` (a 404 naming the ``kind`` when there is none)."""
    i = find(items, name)
    if i is None:
        raise not_found(f"no {kind} {name!r}")
    return items[i]


__all__ = [
    "NO_CONFIG",
    "PREFIX",
    "Id",
    "LightingEngineer",
    "LightingReader",
    "Name",
    "configured",
    "current",
    "dump",
    "find",
    "lighting_router",
    "named",
    "validated",
]
