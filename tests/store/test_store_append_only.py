"""Append-only tables reject UPDATE and DELETE in the database itself (triggers), whatever
client tries; the repositories offer neither."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from lighting.config import LightingConfig
from store import AuditEntry, Interval, Statement, Store
from store.audit import AuditKey
from store.engine import write_tx
from store.errors import AppendOnlyViolation
from store.schema import APPEND_ONLY_TABLES
from tests.store.conftest import T0


async def fill(store: Store) -> None:
    await store.intervals.record([Interval("m1", "import_energy_wh", T0, Decimal("12.5"))], now=T0)
    await store.plans.insert("c1", T0, {"p": 1}, created_by="a", now=T0)
    zero = Decimal(0)
    statement = Statement("m1", zero, zero, zero, zero, zero, zero, zero)
    await store.settlement.append("c1", T0, T0.replace(month=4), [statement], reason="r", now=T0)
    await store.alarms.raise_alarm(
        "k", source="s", kind="lamp_failure", severity="warning", message="m", now=T0
    )
    key = AuditKey(b"append-only test key 0123456789")
    await store.audit.append(AuditEntry(T0, "op", "operator", "override", "lamp-1", "ok"), key)
    await store.lighting_config.append(
        LightingConfig(programs=[], calendars=[]), base_hash="", created_by="a", change="c", now=T0
    )


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize("verb", ["UPDATE", "DELETE"])
async def test_append_only_table_rejects_change(store: Store, table: str, verb: str) -> None:
    await fill(store)
    sql = f"UPDATE {table} SET id = id + 1000" if verb == "UPDATE" else f"DELETE FROM {table}"
    with pytest.raises(AppendOnlyViolation, match=f"{table} is append-only"):
        async with write_tx(store.engine, f"tamper with {table}") as conn:
            await conn.execute(text(sql))
    async with store.engine.connect() as conn:
        count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    assert count >= 1


async def test_raw_readings_are_not_append_only(store: Store) -> None:
    """Raw telemetry has a retention, so it must stay deletable."""
    assert "raw_readings" not in APPEND_ONLY_TABLES
    async with write_tx(store.engine, "delete raw") as conn:
        await conn.execute(text("DELETE FROM raw_readings"))


@pytest.mark.parametrize("repository", ["intervals", "plans", "settlement", "alarms", "audit"])
def test_append_only_repositories_offer_no_update_or_delete(repository: str) -> None:
    from store import alarms, audit, intervals, plans, settlement

    module = {
        "intervals": intervals,
        "plans": plans,
        "settlement": settlement,
        "alarms": alarms,
        "audit": audit,
    }[repository]
    classes = [v for k, v in vars(module).items() if k.endswith("Repository")]
    assert classes
    for cls in classes:
        names = [n for n in dir(cls) if not n.startswith("_")]
        assert not [n for n in names if n.startswith(("update", "delete", "remove", "edit"))]


async def test_truncate_is_rejected_too(store: Store) -> None:
    """PostgreSQL's TRUNCATE bypasses row triggers, so it has a statement trigger of its own;
    SQLite's equivalent (DELETE without WHERE) is covered by the row triggers."""
    await fill(store)
    sql = "TRUNCATE {} CASCADE" if store.engine.dialect.name == "postgresql" else "DELETE FROM {}"
    for table in APPEND_ONLY_TABLES:
        with pytest.raises(AppendOnlyViolation, match=f"{table} is append-only"):
            async with write_tx(store.engine, f"truncate {table}") as conn:
                await conn.execute(text(sql.format(table)))
