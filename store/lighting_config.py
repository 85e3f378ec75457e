"""Versions of the street-lighting configuration: every edit is a new, complete version.

The lighting engineer edits programs, calendars and assignments over the web API; each change
stores the whole resulting ``lighting:`` document (as :class:`lighting.config.LightingConfig`
reads it) as version *n + 1*. Rows are never changed or removed (database triggers), so the
history of what the streets ran is kept.

Which configuration a service runs (:func:`effective_lighting`):

* Each version carries ``base_hash``: the :func:`lighting_hash` of the site file's ``lighting:``
  section the edits started from (inherited by every later edit), or ``""`` when there was no
  site file section (a store-only setup, e.g. the API without a running service).
* **The latest stored version wins when it is based on the same site file section** (its
  ``base_hash`` equals the hash of the site file's section now), or when both have none.
* **When the site file's section changed** (another hash, or it was added or removed), **the
  site file wins**, and that is logged at WARNING with both hashes: an administrator who edits
  the file means it. The stored versions stay; the next web edit starts from the file again.
* Without stored versions the site file's section applies as it is.

::

    chosen = await effective_lighting(store.lighting_config, site.lighting)
    site_for_service = await effective_lighting_site(store.lighting_config, site.lighting)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lighting.config import LightingConfig, LightingSite
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import lighting_config_versions as versions

log = logging.getLogger(__name__)

#: ``base_hash`` of versions that were not based on a site file's section.
NO_BASE = ""


class VersionConflict(StoreError):
    """Another edit stored a version since the one this edit started from."""

    def __init__(self, expected: int, latest: int) -> None:
        self.expected = expected
        self.latest = latest
        super().__init__(
            "store lighting configuration",
            f"based on version {expected}, but version {latest} is the latest now",
        )


def config_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of a JSON document in canonical form (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lighting_document(config: LightingConfig) -> dict[str, Any]:
    """The JSON document of a configuration (every field, defaults included)."""
    return config.model_dump(mode="json")


def lighting_hash(config: LightingConfig | None) -> str:
    """The hash that identifies a site file's ``lighting:`` section (``""`` for none)."""
    return NO_BASE if config is None else config_hash(lighting_document(config))


@dataclass(frozen=True, slots=True)
class StoredLightingConfig:
    version: int
    created_at: datetime
    created_by: str
    base_hash: str
    change: str
    document: dict[str, Any]

    def config(self) -> LightingConfig:
        """The version validated again (a stored document was valid when it was stored)."""
        return LightingConfig.model_validate(self.document)


def _stored(row: object) -> StoredLightingConfig:
    r = row._mapping  # type: ignore[attr-defined]
    return StoredLightingConfig(
        r["version"], r["created_at"], r["created_by"], r["base_hash"], r["change"], r["config"]
    )


def _check_expected(expected: int | None, latest: int) -> None:
    if expected is not None and latest != expected:
        raise VersionConflict(expected, latest)


async def _latest_version(conn: AsyncConnection) -> int:
    value = (await conn.execute(select(func.max(versions.c.version)))).scalar()
    return int(value or 0)


class LightingConfigRepository:
    """Append and read versions; there is no update and no delete."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(
        self,
        config: LightingConfig,
        *,
        base_hash: str,
        created_by: str,
        change: str,
        now: datetime,
        expected_version: int | None = None,
    ) -> StoredLightingConfig:
        """Store ``config`` as the next version. ``expected_version``: the version the edit
        started from (0 for none); another one being the latest raises :class:`VersionConflict`
        (also when two edits race for the same number)."""
        document = lighting_document(config)
        what = "store lighting configuration"
        try:
            async with write_tx(self._engine, what) as conn:
                latest = await _latest_version(conn)
                _check_expected(expected_version, latest)
                row = {
                    "version": latest + 1,
                    "created_at": now,
                    "created_by": created_by,
                    "base_hash": base_hash,
                    "change": change,
                    "config": document,
                }
                await conn.execute(versions.insert(), row)
        except VersionConflict:
            raise
        except StoreError as exc:
            if "version" not in exc.reason or expected_version is None:
                raise
            latest = (await self.latest_version()) or 0
            raise VersionConflict(expected_version, latest) from exc
        return StoredLightingConfig(latest + 1, now, created_by, base_hash, change, document)

    async def latest_version(self) -> int | None:
        async with read_tx(self._engine, "read lighting configuration version") as conn:
            value = await _latest_version(conn)
        return value or None

    async def latest(self) -> StoredLightingConfig | None:
        async with read_tx(self._engine, "read lighting configuration") as conn:
            row = (
                await conn.execute(select(versions).order_by(versions.c.version.desc()).limit(1))
            ).first()
        return None if row is None else _stored(row)

    async def get(self, version: int) -> StoredLightingConfig | None:
        async with read_tx(self._engine, f"read lighting configuration {version}") as conn:
            row = (
                await conn.execute(select(versions).where(versions.c.version == version))
            ).first()
        return None if row is None else _stored(row)

    async def history(self, limit: int = 100) -> list[StoredLightingConfig]:
        """The newest ``limit`` versions, newest first."""
        async with read_tx(self._engine, "read lighting configuration history") as conn:
            rows = (
                await conn.execute(
                    select(versions).order_by(versions.c.version.desc()).limit(limit)
                )
            ).all()
        return [_stored(row) for row in rows]


@dataclass(frozen=True, slots=True)
class EffectiveLighting:
    """The configuration that applies, and where it came from.

    ``version``: the stored version (None: the site file's section). ``base_hash``: what an
    edit of it records as its base. ``site_hash``: the site file's section now.
    ``latest_version``: the newest stored version (0: none), which an edit expects."""

    config: LightingConfig
    version: int | None
    base_hash: str
    site_hash: str
    latest_version: int = 0

    @property
    def source(self) -> str:
        return "site file" if self.version is None else f"stored version {self.version}"


async def effective_lighting(
    repo: LightingConfigRepository,
    site_lighting: LightingConfig | None,
    *,
    announce: bool = True,
) -> EffectiveLighting | None:
    """The rule of the module docstring; None when neither the store nor the site file has a
    lighting configuration. ``announce=False``: do not log the site file winning (readers
    that ask on every request)."""
    site_hash = lighting_hash(site_lighting)
    stored = await repo.latest()
    latest = 0 if stored is None else stored.version
    if stored is not None and stored.base_hash == site_hash:
        try:
            return EffectiveLighting(
                stored.config(), stored.version, stored.base_hash, site_hash, latest
            )
        except ValidationError:  # the core's rules got stricter since it was stored
            log.exception(
                "stored lighting configuration version %d is no longer valid, using the site file",
                stored.version,
            )
    elif stored is not None and announce:
        log.warning(
            "lighting: the site file's lighting section changed (hash %s) since stored version "
            "%d was based on it (hash %s): the site file applies",
            site_hash[:12] or "(none)",
            stored.version,
            stored.base_hash[:12] or "(none)",
        )
    if site_lighting is None:
        return None
    return EffectiveLighting(site_lighting, None, site_hash, site_hash, latest)


async def effective_lighting_site(
    repo: LightingConfigRepository, site_lighting: LightingConfig | None
) -> LightingSite | None:
    """What ``scheduler.service.Service`` starts its lighting with (:func:`effective_lighting`)."""
    chosen = await effective_lighting(repo, site_lighting)
    return None if chosen is None else chosen.config.site


__all__ = [
    "NO_BASE",
    "EffectiveLighting",
    "LightingConfigRepository",
    "StoredLightingConfig",
    "VersionConflict",
    "config_hash",
    "effective_lighting",
    "effective_lighting_site",
    "lighting_document",
    "lighting_hash",
]
