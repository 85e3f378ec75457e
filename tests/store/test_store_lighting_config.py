"""Lighting configuration versions: append-only, numbered without gaps, a stale edit refused,
and the start rule (a stored version based on the same site file wins; a changed site file
wins over it, logged)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lighting.config import LightingConfig
from store import Store
from store.engine import write_tx
from store.errors import AppendOnlyViolation
from store.lighting_config import (
    NO_BASE,
    VersionConflict,
    effective_lighting,
    effective_lighting_site,
    lighting_document,
    lighting_hash,
)
from store.schema import APPEND_ONLY_TABLES
from tests.store.conftest import T0


def document(evening_pct: float = 70.0) -> dict[str, Any]:
    return {
        "programs": [
            {
                "name": "Wohnstraße",
                "steps": [
                    {"name": "on", "anchor": "sunset", "level_pct": 100, "ramp_s": 60},
                    {"name": "evening", "anchor": "clock", "clock": "22:00",
                     "level_pct": evening_pct},
                    {"name": "off", "anchor": "sunrise", "level_pct": 0},
                ],
            }
        ],
        "calendars": [
            {"name": "default", "default_program": "Wohnstraße",
             "rules": [{"kind": "date_range", "name": "Sommer", "program": "Wohnstraße",
                        "first": "2026-06-01", "last": "2026-08-31", "every_year": True}]}
        ],
        "segments": [
            {"id": "s1", "latitude_deg": 51.5, "longitude_deg": 7.5, "design_class": "M4",
             "lower_classes": ["M5"], "traffic": {"capacity_veh_per_h": 600}}
        ],
        "luminaires": [
            {"id": "l1", "segment": "s1", "street": "Hauptstraße", "pole": 1, "rated_power_w": 40}
        ],
    }  # fmt: skip


def config(evening_pct: float = 70.0) -> LightingConfig:
    return LightingConfig.model_validate(document(evening_pct))


async def test_versions_are_numbered_and_read_back_as_valid_configurations(store: Store) -> None:
    repo = store.lighting_config
    assert await repo.latest() is None
    first = await repo.append(
        config(70), base_hash=NO_BASE, created_by="lena", change="first", now=T0
    )
    second = await repo.append(
        config(40),
        base_hash=NO_BASE,
        created_by="lena",
        change="darker evenings",
        now=T0 + timedelta(hours=1),
        expected_version=1,
    )
    assert (first.version, second.version) == (1, 2)
    latest = await repo.latest()
    assert latest is not None
    assert latest.version == 2
    assert latest.created_at == T0 + timedelta(hours=1)
    assert latest.change == "darker evenings"
    # the document survives the database (JSONB on PostgreSQL) and validates again
    assert latest.config().programs[0].steps[1].level_pct == 40
    assert lighting_hash(latest.config()) == lighting_hash(config(40))
    old = await repo.get(1)
    assert old is not None
    assert old.config().programs[0].steps[1].level_pct == 70
    assert [v.version for v in await repo.history()] == [2, 1]
    assert await repo.get(3) is None


async def test_an_edit_of_an_old_version_is_refused(store: Store) -> None:
    repo = store.lighting_config
    await repo.append(config(), base_hash=NO_BASE, created_by="a", change="c", now=T0)
    await repo.append(config(50), base_hash=NO_BASE, created_by="b", change="c", now=T0)
    with pytest.raises(VersionConflict, match="based on version 1, but version 2"):
        await repo.append(
            config(30), base_hash=NO_BASE, created_by="a", change="c", now=T0, expected_version=1
        )
    assert await repo.latest_version() == 2


@pytest.mark.parametrize("table", ["lighting_config_versions"])
@pytest.mark.parametrize("sql", ["UPDATE {} SET change = 'edited'", "DELETE FROM {}"])
async def test_versions_cannot_be_changed_or_removed(store: Store, table: str, sql: str) -> None:
    assert table in APPEND_ONLY_TABLES
    await store.lighting_config.append(config(), base_hash="", created_by="a", change="c", now=T0)
    with pytest.raises(AppendOnlyViolation, match=f"{table} is append-only"):
        async with write_tx(store.engine, "tamper") as conn:
            await conn.execute(text(sql.format(table)))
    latest = await store.lighting_config.latest()
    assert latest is not None
    assert latest.change == "c"


async def test_stored_version_based_on_the_same_site_file_wins(store: Store) -> None:
    site = config(70)
    repo = store.lighting_config
    chosen = await effective_lighting(repo, site)
    assert chosen is not None
    assert chosen.version is None
    assert chosen.source == "site file"
    assert chosen.base_hash == lighting_hash(site)

    await repo.append(
        config(30), base_hash=lighting_hash(site), created_by="lena", change="c", now=T0
    )
    chosen = await effective_lighting(repo, site)
    assert chosen is not None
    assert chosen.source == "stored version 1"
    assert chosen.config.programs[0].steps[1].level_pct == 30
    lit = await effective_lighting_site(repo, site)
    assert lit is not None
    assert set(lit.index.luminaires) == {"l1"}


async def test_a_changed_site_file_wins_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    repo = store.lighting_config
    await repo.append(
        config(30), base_hash=lighting_hash(config(70)), created_by="lena", change="c", now=T0
    )
    edited_file = config(60)
    with caplog.at_level(logging.WARNING, logger="store.lighting_config"):
        chosen = await effective_lighting(repo, edited_file)
    assert chosen is not None
    assert chosen.version is None
    assert chosen.config.programs[0].steps[1].level_pct == 60
    assert "site file applies" in caplog.text
    # a site file without a lighting section: lighting stays off, also logged
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="store.lighting_config"):
        assert await effective_lighting(repo, None) is None
    assert "site file applies" in caplog.text


async def test_store_only_versions_apply_without_a_site_file_section(store: Store) -> None:
    repo = store.lighting_config
    assert await effective_lighting(repo, None) is None
    await repo.append(config(45), base_hash=NO_BASE, created_by="lena", change="c", now=T0)
    chosen = await effective_lighting(repo, None)
    assert chosen is not None
    assert chosen.version == 1
    assert lighting_document(chosen.config) == lighting_document(config(45))
