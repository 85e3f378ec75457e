"""One way to change the lighting configuration: validate the whole resulting document, store
it as the next version, reconfigure the running lighting, audit.

Every change stores the whole resulting configuration as a new version
(:mod:`store.lighting_config`), reconfigures the running lighting when the app has a runtime
with lighting (:meth:`api.runtime.LightingControl.reconfigure`), and writes an audit record
with the old and the new value (result ``applied``: the service runs it; ``stored``: it
applies at the next start). A route describes its change as an :class:`Edit` of the current
document and hands it to :func:`edit_lighting`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from fastapi.responses import JSONResponse

from api.acting import Acting
from api.audit import record_action
from api.auth import Principal
from api.errors import bad_field, conflict, not_found
from api.routers.lighting.shared import current, validated
from api.runtime import Runtime, lighting_control
from api.schemas.lighting import ChangePublic
from lighting.config import LightingConfig, ProgramConfig
from lighting.errors import LightingInputError
from lighting.program import check_program
from store import Store
from store.lighting_config import (
    EffectiveLighting,
    StoredLightingConfig,
    VersionConflict,
    lighting_document,
)

log = logging.getLogger(__name__)

#: The sections of the lighting document whose items have names.
Section = Literal["programs", "calendars"]


@dataclass(frozen=True)
class Edit:
    """A change of the lighting document: the whole new ``document``, what the audit record
    says (``action``, ``target``, ``old_value``, ``new_value``), the version's ``change``
    note, and the ``item`` the answer shows."""

    document: dict[str, Any]
    action: str
    target: str
    change: str
    old_value: Any
    new_value: Any
    item: dict[str, Any]


def _item_edit(
    document: dict[str, Any],
    kind: str,
    verb: Literal["create", "update"],
    old: dict[str, Any] | None,
    item: dict[str, Any],
) -> Edit:
    name = item["name"]
    done = "created" if verb == "create" else "changed"
    return Edit(
        document,
        action=f"lighting.{kind}.{verb}",
        target=f"{kind}:{name}",
        change=f"{kind} {name!r} {done}",
        old_value=old,
        new_value=item,
        item=item,
    )


def created(chosen: EffectiveLighting, section: Section, kind: str, item: dict[str, Any]) -> Edit:
    """``item`` added to ``section`` (409 when its name is taken)."""
    document = lighting_document(chosen.config)
    if any(x["name"] == item["name"] for x in document[section]):
        raise conflict(f"a {kind} {item['name']!r} exists already; edit it with PUT")
    document[section].append(item)
    return _item_edit(document, kind, "create", None, item)


def changed(chosen: EffectiveLighting, section: Section, kind: str, item: dict[str, Any]) -> Edit:
    """The item of ``section`` with ``item``'s name replaced by ``item`` (404 when none)."""
    document = lighting_document(chosen.config)
    items = document[section]
    i = next((k for k, x in enumerate(items) if x["name"] == item["name"]), None)
    if i is None:
        raise not_found(f"no {kind} {item['name']!r}")
    old, items[i] = items[i], item
    return _item_edit(document, kind, "update", old, item)


async def check_over_a_year(
    config: LightingConfig, program: ProgramConfig, today: date, field: str = "body.steps"
) -> None:
    """Resolve the program for every night of the coming year at every place of the site (an
    order of steps can hold in winter and break in May); a 422 names the step."""
    places = {
        (s.latitude_deg, s.longitude_deg, s.timezone): s
        for s in config.site.index.segments.values()
    }
    for seg in places.values():
        try:
            await asyncio.to_thread(check_program, program.program, seg.place, today)
        except LightingInputError as exc:
            raise bad_field(field, f"{exc.field}: {exc.reason}") from exc
        except (ValueError, ArithmeticError) as exc:  # e.g. an offset beyond the calendar
            raise bad_field(field, f"cannot be resolved: {exc}") from exc


async def _append(
    store: Store,
    caller: Principal,
    chosen: EffectiveLighting,
    config: LightingConfig,
    change: str,
    now: datetime,
) -> StoredLightingConfig:
    """Store ``config`` as the version after ``chosen`` (409 when another came meanwhile)."""
    try:
        return await store.lighting_config.append(
            config,
            base_hash=chosen.base_hash,
            created_by=caller.username,
            change=change,
            now=now,
            expected_version=chosen.latest_version,
        )
    except VersionConflict as exc:
        raise conflict(
            f"the lighting configuration changed meanwhile ({exc.reason}); reload"
        ) from exc


async def _apply(runtime: Runtime | None, config: LightingConfig, version: int) -> tuple[bool, str]:
    """Reconfigure the running lighting with the stored version: (applied, what happened)."""
    control = lighting_control(runtime)
    if control is None:
        return False, (
            f"stored as version {version}; no lighting service runs in this process, "
            "it applies when the service starts"
        )
    try:
        await control.reconfigure(config.site)
    except Exception as exc:  # whatever the service refuses, the stored version stands
        log.exception("lighting: reconfiguring the service with version %d", version)
        return False, (
            f"stored as version {version}; the running lighting service could not take it: {exc}"
        )
    return True, f"stored as version {version}; the lighting service runs it"


async def store_change(
    acting: Acting, caller: Principal, chosen: EffectiveLighting, edit: Edit, now: datetime
) -> ChangePublic:
    """Validate the whole new document, store it as the next version, reconfigure the running
    service, audit; a 422 names the field of the resulting configuration (``config.…``)."""
    config = validated(LightingConfig, edit.document, ("config",))
    stored = await _append(acting.store, caller, chosen, config, edit.change, now)
    applied, detail = await _apply(acting.state.runtime, config, stored.version)
    await record_action(
        acting.store,
        acting.state.audit_key,
        caller,
        edit.action,
        edit.target,
        result="applied" if applied else "stored",
        now=now,
        old_value=edit.old_value,
        new_value=edit.new_value,
    )
    return ChangePublic(version=stored.version, applied=applied, detail=detail, item=edit.item)


async def edit_lighting(
    caller: Principal,
    acting: Acting,
    status_code: int,
    make: Callable[[EffectiveLighting, datetime], Awaitable[Edit]],
) -> JSONResponse:
    """The route's :class:`Edit` of the configuration that applies, stored, applied and
    audited once per ``Idempotency-Key``."""

    async def act(now: datetime) -> tuple[int, ChangePublic]:
        chosen = await current(acting.state.runtime, acting.store)
        edit = await make(chosen, now)
        return status_code, await store_change(acting, caller, chosen, edit, now)

    return await acting.once(caller, act)


__all__ = [
    "Edit",
    "Section",
    "changed",
    "check_over_a_year",
    "created",
    "edit_lighting",
    "store_change",
]
