"""The audit log's keyed hash chain (SQLite and PostgreSQL): appends link up; verification
finds an edited record, a deleted one, a chain recomputed without the key, and (against an
exported head) a truncated tail; a prefix written before the key is sealed and reported."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from store import AuditEntry, Store
from store.audit import (
    GENESIS,
    SEAL_ACTION,
    AuditKey,
    AuditRecord,
    ChainHead,
    chain_hash,
    row_values,
    unkeyed_hash,
    verify_records,
)
from store.engine import write_tx
from store.schema import audit_log
from tests.store.conftest import T0

KEY = AuditKey(b"the audit key of the tests, 32 bytes")
OTHER_KEY = AuditKey(b"somebody else's key, also long enough")
Statement = tuple[str, dict[str, Any]]


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


async def tamper(store: Store, *statements: Statement) -> None:
    """What someone with database admin rights could do: switch the triggers off first."""
    async with write_tx(store.engine, "tamper") as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for sql, params in statements:
            await conn.execute(text(sql), params)
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


def rehash(
    records: list[AuditRecord], start: int, hasher: Callable[[AuditEntry, str], str]
) -> list[Statement]:
    """UPDATE statements that rewrite the hashes from ``records[start]`` on with ``hasher``
    (the edited entries as given): a chain recomputed without the right key."""
    out: list[Statement] = []
    prev = records[start - 1].hash if start else GENESIS
    for r in records[start:]:
        digest = hasher(r.entry, prev)
        out.append(
            (
                "UPDATE audit_log SET actor = :actor, prev_hash = :p, hash = :h WHERE id = :id",
                {"actor": r.entry.actor, "p": f"tmp-{r.id}", "h": f"tmp-h-{r.id}", "id": r.id},
            )
        )
        out.append(
            ("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :id",
             {"p": prev, "h": digest, "id": r.id})
        )  # fmt: skip
        prev = digest
    return out


async def test_appended_records_form_a_valid_keyed_chain(store: Store) -> None:
    records = [await store.audit.append(entry(i), KEY) for i in range(5)]
    assert records[0].prev_hash == GENESIS
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    assert records[0].hash == chain_hash(entry(0), GENESIS, KEY) != unkeyed_hash(entry(0), GENESIS)
    report = await store.audit.verify(KEY)
    assert (report.ok, report.checked, report.unkeyed) == (True, 5, 0)
    assert report.head == ChainHead(5, records[-1].hash)
    assert await store.audit.records() == records  # values round-trip exactly
    assert (await store.audit.verify(KEY, report.head)).ok


async def test_verify_detects_an_edited_record(store: Store) -> None:
    records = [await store.audit.append(entry(i), KEY) for i in range(5)]
    await tamper(store, ("UPDATE audit_log SET actor = 'mallory' WHERE id = :id",
                         {"id": records[2].id}))  # fmt: skip
    report = await store.audit.verify(KEY)
    assert not report.ok
    assert report.bad_id == records[2].id
    assert report.reason is not None
    assert "edited" in report.reason


async def test_verify_detects_a_deleted_record(store: Store) -> None:
    records = [await store.audit.append(entry(i), KEY) for i in range(5)]
    await tamper(store, ("DELETE FROM audit_log WHERE id = :id", {"id": records[1].id}))
    report = await store.audit.verify(KEY)
    assert not report.ok
    assert report.bad_id == records[2].id
    assert report.reason is not None
    assert "removed" in report.reason


async def test_verify_detects_a_deleted_first_record(store: Store) -> None:
    records = [await store.audit.append(entry(i), KEY) for i in range(3)]
    await tamper(store, ("DELETE FROM audit_log WHERE id = :id", {"id": records[0].id}))
    report = await store.audit.verify(KEY)
    assert not report.ok
    assert report.bad_id == records[1].id


async def test_an_edit_with_the_chain_recomputed_without_the_key_is_detected(
    store: Store,
) -> None:
    """The attack the unkeyed chain could not see: edit record 2 and recompute every hash
    from there on, with plain SHA-256 (the old scheme) or with a key of one's own."""
    records = [await store.audit.append(entry(i), KEY) for i in range(5)]
    edited = [*records[:2], *(replace(r, entry=replace(r.entry, actor="mallory"))
                              for r in records[2:])]  # fmt: skip
    for hasher in (unkeyed_hash, lambda e, p: chain_hash(e, p, OTHER_KEY)):
        await tamper(store, *rehash(edited, 2, hasher))
        after = await store.audit.records()
        assert [r.entry.actor for r in after] == ["anna", "anna"] + ["mallory"] * 3
        assert verify_records(after, KEY, None).ok is False  # the pure check agrees
        report = await store.audit.verify(KEY)
        assert not report.ok
        assert report.bad_id == records[2].id
        assert report.reason is not None
        assert "recomputed without the key" in report.reason
        assert KEY.key_id in report.reason


async def test_a_truncated_tail_is_detected_against_the_exported_head(store: Store) -> None:
    records = [await store.audit.append(entry(i), KEY) for i in range(6)]
    head = (await store.audit.verify(KEY)).head
    assert head == ChainHead(6, records[-1].hash)
    assert ChainHead.parse(str(head)) == head
    await tamper(store, ("DELETE FROM audit_log WHERE id >= :id", {"id": records[4].id}))
    alone = await store.audit.verify(KEY)
    assert (alone.ok, alone.checked) == (True, 4)  # a shorter chain is valid by itself ...
    report = await store.audit.verify(KEY, head)
    assert not report.ok  # ... but not against the head exported before
    assert report.reason is not None
    assert report.reason.startswith("truncated: 4 records")


async def test_a_rewritten_chain_of_the_same_length_differs_from_the_exported_head(
    store: Store,
) -> None:
    records = [await store.audit.append(entry(i), KEY) for i in range(3)]
    head = (await store.audit.verify(KEY)).head
    fake = ChainHead(head.count, "f" * 64)
    report = await store.audit.verify(KEY, fake)
    assert not report.ok
    assert report.bad_id == records[-1].id
    assert (await store.audit.verify(KEY, head)).ok


async def insert_unkeyed(store: Store, n: int) -> list[AuditRecord]:
    """A chain as Waldstadt wrote it before the key: plain SHA-256."""
    out: list[AuditRecord] = []
    prev = GENESIS
    async with write_tx(store.engine, "old chain") as conn:
        for i in range(n):
            e = entry(i)
            digest = unkeyed_hash(e, prev)
            await conn.execute(audit_log.insert().values(row_values(e, prev, digest)))
            prev = digest
    for r in await store.audit.records():
        out.append(r)
    return out


async def test_a_chain_written_before_the_key_is_sealed_and_reported(store: Store) -> None:
    old = await insert_unkeyed(store, 3)
    unsealed = await store.audit.verify(KEY)
    assert not unsealed.ok  # never silently accepted
    assert unsealed.reason is not None
    assert "never sealed" in unsealed.reason
    new = await store.audit.append(replace(entry(9), old_value=None, new_value=None), KEY)
    records = await store.audit.records()
    assert [r.entry.action for r in records] == ["override"] * 3 + [SEAL_ACTION, "override"]
    seal = records[3]
    assert seal.prev_hash == old[-1].hash
    assert seal.entry.new_value == {
        "unkeyed_records": 3,
        "unkeyed_head": old[-1].hash,
        "key_id": KEY.key_id,
    }
    assert new.prev_hash == seal.hash
    report = await store.audit.verify(KEY)
    assert (report.ok, report.checked, report.unkeyed) == (True, 5, 3)
    assert await store.audit.seal(KEY, T0) is None  # nothing left to seal
    # rewriting the old prefix (with SHA-256, as it was written) breaks the seal's link
    edited = [replace(r, entry=replace(r.entry, actor="mallory")) for r in old]
    await tamper(store, *rehash(edited, 0, unkeyed_hash))
    broken = await store.audit.verify(KEY)
    assert (broken.ok, broken.bad_id) == (False, seal.id)


async def test_seal_closes_an_old_chain_at_start_up(store: Store) -> None:
    old = await insert_unkeyed(store, 2)
    sealed = await store.audit.seal(KEY, T0)
    assert sealed is not None
    assert sealed.prev_hash == old[-1].hash
    report = await store.audit.verify(KEY)
    assert (report.ok, report.unkeyed) == (True, 2)


async def test_concurrent_appenders_keep_one_linear_chain(
    store: Store, open_store: Callable[..., Store]
) -> None:
    async with open_store() as other:
        await asyncio.gather(
            *(s.audit.append(entry(i), KEY) for i, s in enumerate([store, other] * 10))
        )
    report = await store.audit.verify(KEY)
    assert report.ok
    assert report.checked == 20


def _chain(n: int) -> list[AuditRecord]:
    prev = GENESIS
    out = []
    for i in range(n):
        e = entry(i)
        h = chain_hash(e, prev, KEY)
        out.append(AuditRecord(i + 1, e, prev, h))
        prev = h
    return out


@given(n=st.integers(2, 12), data=st.data())
def test_any_single_edit_deletion_or_truncation_is_detected(n: int, data: st.DataObject) -> None:
    chain = _chain(n)
    head = ChainHead(n, chain[-1].hash)
    assert verify_records(chain, KEY, head).ok
    assert not verify_records(chain, OTHER_KEY).ok
    i = data.draw(st.integers(0, n - 1))
    edited = list(chain)
    field = data.draw(st.sampled_from(["actor", "target", "result", "new_value", "ts"]))
    new_value = {"ts": T0 - timedelta(days=1), "new_value": {"level_pct": 0}}.get(field, "x")
    edited[i] = replace(chain[i], entry=replace(chain[i].entry, **{field: new_value}))
    assert not verify_records(edited, KEY).ok
    without = chain[:i] + chain[i + 1 :]
    assert not verify_records(without, KEY, head).ok
    if i < n - 1:  # deleting the newest record is only visible against an exported head
        assert not verify_records(without, KEY).ok
