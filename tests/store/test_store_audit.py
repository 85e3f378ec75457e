"""The audit log's hash chain: appends link up, verification finds edits and deletions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from store import AuditEntry, Store
from store.audit import GENESIS, AuditRecord, chain_hash, verify_records
from store.engine import write_tx
from tests.store.conftest import T0


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        ts=T0 + timedelta(seconds=i),
        actor="anna",
        role="operator",
        action="override",
        target=f"lamp-{i}",
        result="ok",
        old_value={"level_pct": 40, "note": "Straße"},
        new_value={"level_pct": 100.5, "until": "2026-03-01T06:00:00+00:00"},
        command_id=f"cmd-{i}",
    )


async def tamper(store: Store, sql: str) -> None:
    """What someone with database admin rights could do: switch the triggers off first."""
    async with write_tx(store.engine, "tamper") as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            await conn.execute(text(sql))
            await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER audit_log_no_update"))
            await conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            await conn.execute(text(sql))


async def test_appended_records_form_a_valid_chain(store: Store) -> None:
    records = [await store.audit.append(entry(i)) for i in range(5)]
    assert records[0].prev_hash == GENESIS
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    report = await store.audit.verify()
    assert report.ok
    assert report.checked == 5
    assert report.head_hash == records[-1].hash
    assert await store.audit.records() == records  # values round-trip exactly


async def test_verify_detects_an_edited_record(store: Store) -> None:
    records = [await store.audit.append(entry(i)) for i in range(5)]
    await tamper(store, f"UPDATE audit_log SET actor = 'mallory' WHERE id = {records[2].id}")
    report = await store.audit.verify()
    assert not report.ok
    assert report.bad_id == records[2].id
    assert report.reason is not None
    assert "edited" in report.reason


async def test_verify_detects_a_deleted_record(store: Store) -> None:
    records = [await store.audit.append(entry(i)) for i in range(5)]
    await tamper(store, f"DELETE FROM audit_log WHERE id = {records[1].id}")
    report = await store.audit.verify()
    assert not report.ok
    assert report.bad_id == records[2].id
    assert report.reason is not None
    assert "removed" in report.reason


async def test_verify_detects_a_deleted_first_record(store: Store) -> None:
    records = [await store.audit.append(entry(i)) for i in range(3)]
    await tamper(store, f"DELETE FROM audit_log WHERE id = {records[0].id}")
    report = await store.audit.verify()
    assert not report.ok
    assert report.bad_id == records[1].id


async def test_concurrent_appenders_keep_one_linear_chain(
    store: Store, open_store: Callable[..., Store]
) -> None:
    async with open_store() as other:
        await asyncio.gather(*(s.audit.append(entry(i)) for i, s in enumerate([store, other] * 10)))
    report = await store.audit.verify()
    assert report.ok
    assert report.checked == 20


def _chain(n: int) -> list[AuditRecord]:
    prev = GENESIS
    out = []
    for i in range(n):
        e = entry(i)
        h = chain_hash(e, prev)
        out.append(AuditRecord(i + 1, e, prev, h))
        prev = h
    return out


@given(n=st.integers(2, 12), data=st.data())
def test_any_single_edit_or_deletion_is_detected(n: int, data: st.DataObject) -> None:
    chain = _chain(n)
    assert verify_records(chain).ok
    i = data.draw(st.integers(0, n - 1))
    edited = list(chain)
    field = data.draw(st.sampled_from(["actor", "target", "result", "new_value", "ts"]))
    new_value = {"ts": T0 - timedelta(days=1), "new_value": {"level_pct": 0}}.get(field, "x")
    edited[i] = replace(chain[i], entry=replace(chain[i].entry, **{field: new_value}))
    assert not verify_records(edited).ok
    if i < n - 1:  # deleting the newest record is only visible against a published head
        assert not verify_records(chain[:i] + chain[i + 1 :]).ok
