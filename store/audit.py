"""The audit log: append-only, hash-chained.

Each record carries ``prev_hash`` (the hash of the record before it; :data:`GENESIS` for the
first) and ``hash = sha256(canonical JSON of the record ‖ prev_hash)``. Canonical JSON is
UTF-8 with sorted keys, no spaces and ``ts`` as ISO 8601 UTC. :func:`verify_chain` walks the
log and finds an edited record (its hash no longer matches) and a deleted one (the next
record's ``prev_hash`` no longer matches). Removing the *newest* records leaves a shorter but
valid chain; publish :attr:`ChainReport.head_hash` elsewhere to detect that.

``prev_hash`` is unique, so two writers cannot both append after the same record: the loser
of that race retries on the new tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.readings import utc
from store.dialect import insert_ignoring, serialize_on
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import audit_log

GENESIS = "0" * 64
_ATTEMPTS = 20
_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened: who (actor, role) did what (action) to what (target), with what result."""

    ts: datetime
    actor: str
    role: str
    action: str
    target: str
    result: str
    old_value: Any = None
    new_value: Any = None
    command_id: str | None = None

    def canonical(self) -> bytes:
        """The bytes that are hashed (without the hashes themselves)."""
        doc = {
            "ts": utc(self.ts).isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "result": self.result,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "command_id": self.command_id,
        }
        return json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    entry: AuditEntry
    prev_hash: str
    hash: str


def chain_hash(entry: AuditEntry, prev_hash: str) -> str:
    """``sha256(canonical(entry) ‖ prev_hash)`` as 64 hex digits."""
    return hashlib.sha256(entry.canonical() + prev_hash.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """``ok`` when every record links to the one before and hashes to its ``hash``."""

    ok: bool
    checked: int
    head_hash: str
    bad_id: int | None = None
    reason: str | None = None


def verify_records(records: Iterable[AuditRecord]) -> ChainReport:
    """Check a chain given oldest first (pure; :meth:`AuditRepository.verify` feeds it)."""
    prev = GENESIS
    checked = 0
    for record in records:
        if record.prev_hash != prev:
            return ChainReport(
                False,
                checked,
                prev,
                record.id,
                f"record {record.id}: prev_hash does not match the record before it "
                "(a record was removed or reordered)",
            )
        if chain_hash(record.entry, record.prev_hash) != record.hash:
            return ChainReport(
                False,
                checked,
                prev,
                record.id,
                f"record {record.id}: content does not match its hash (it was edited)",
            )
        prev = record.hash
        checked += 1
    return ChainReport(True, checked, prev)


def _record(row: Any) -> AuditRecord:
    r = row._mapping
    entry = AuditEntry(
        r["ts"],
        r["actor"],
        r["role"],
        r["action"],
        r["target"],
        r["result"],
        r["old_value"],
        r["new_value"],
        r["command_id"],
    )
    return AuditRecord(r["id"], entry, r["prev_hash"], r["hash"])


class AuditRepository:
    """Append and read; there is deliberately no update or delete."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Append after the current tail; returns the stored record with its hashes."""
        for _ in range(_ATTEMPTS):
            async with write_tx(self._engine, f"audit {entry.action} on {entry.target}") as conn:
                await serialize_on(conn, "audit_log:tail")
                tail = (
                    await conn.execute(
                        select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
                    )
                ).scalar_one_or_none()
                prev_hash = tail or GENESIS
                digest = chain_hash(entry, prev_hash)
                stmt = insert_ignoring(conn, audit_log, "prev_hash").returning(audit_log.c.id)
                new_id = (
                    await conn.execute(
                        stmt,
                        {
                            "ts": entry.ts,
                            "actor": entry.actor,
                            "role": entry.role,
                            "action": entry.action,
                            "target": entry.target,
                            "old_value": entry.old_value,
                            "new_value": entry.new_value,
                            "result": entry.result,
                            "command_id": entry.command_id,
                            "prev_hash": prev_hash,
                            "hash": digest,
                        },
                    )
                ).scalar_one_or_none()
            if new_id is not None:
                return AuditRecord(int(new_id), entry, prev_hash, digest)
        raise StoreError(
            f"audit {entry.action} on {entry.target}",
            f"lost the race for the chain tail {_ATTEMPTS} times",
        )

    async def records(self, after_id: int = 0, limit: int = _PAGE) -> list[AuditRecord]:
        """Records with ``id > after_id``, oldest first (page through with the last id)."""
        async with read_tx(self._engine, "read audit log") as conn:
            rows = (
                await conn.execute(
                    select(audit_log)
                    .where(audit_log.c.id > after_id)
                    .order_by(audit_log.c.id)
                    .limit(limit)
                )
            ).all()
        return [_record(row) for row in rows]

    async def _all(self) -> AsyncIterator[AuditRecord]:
        after = 0
        while True:
            page = await self.records(after, _PAGE)
            for record in page:
                yield record
            if len(page) < _PAGE:
                return
            after = page[-1].id

    async def verify(self) -> ChainReport:
        """Walk the whole log and check the chain."""
        return verify_records([record async for record in self._all()])
