"""The audit log: append-only, hash-chained, keyed.

Each record carries ``prev_hash`` (the hash of the record before it; :data:`GENESIS` for the
first) and ``hash = HMAC-SHA256(key, canonical JSON of the record ‖ prev_hash)``. Canonical
JSON is UTF-8 with sorted keys, no spaces and ``ts`` as ISO 8601 UTC. The key
(:class:`AuditKey`, ``WALDSTADT_AUDIT_KEY``) is not the token secret: rotating that one signs
everyone out and must not touch the audit trail.

:func:`verify_records` walks the log and finds an edited record (its hash no longer
matches), a deleted or reordered one (the next record's ``prev_hash`` no longer matches) and a
chain recomputed without the key (plain SHA-256 or another key do not match the HMAC).
Removing the *newest* records leaves a shorter but valid chain: export the head
(:class:`ChainHead`: the number of records and the newest hash; ``waldstadt audit head``,
``GET /api/v1/audit/head``) and verify against it later, which finds the truncation.

**Records written before the key** (Waldstadt up to migration 0005 hashed with plain
SHA-256): they stay as they are (the log is append-only), and the first keyed append puts a
seal record (``audit.keyed``) after them whose HMAC covers the last unkeyed hash. Verification
accepts unkeyed records only as that prefix and reports how many there are
(:attr:`ChainReport.unkeyed`): they are protected from the seal on, not before it. An unkeyed
record after a keyed one, or unkeyed records at the end (nothing sealed them), fail.

``prev_hash`` is unique, so two writers cannot both append after the same record: the loser
of that race retries on the new tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.readings import utc
from store.dialect import insert_ignoring, serialize_on
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import audit_log

GENESIS = "0" * 64
#: The action of the record that seals a prefix written before the key.
SEAL_ACTION = "audit.keyed"
_ATTEMPTS = 20
_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The chain's HMAC key (bytes; never shown). ``key_id`` names it without revealing it,
    so a verification with the wrong key can say so."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("audit key: must be at least 16 bytes")

    @classmethod
    def from_text(cls, text: str) -> AuditKey:
        return cls(text.encode())

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"waldstadt audit key id", "sha256").hexdigest()[:16]


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


def chain_hash(entry: AuditEntry, prev_hash: str, key: AuditKey) -> str:
    """``HMAC-SHA256(key, canonical(entry) ‖ prev_hash)`` as 64 hex digits."""
    return hmac.new(key.secret, entry.canonical() + prev_hash.encode(), "sha256").hexdigest()


def unkeyed_hash(entry: AuditEntry, prev_hash: str) -> str:
    """``sha256(canonical(entry) ‖ prev_hash)``: how records were hashed before the key."""
    return hashlib.sha256(entry.canonical() + prev_hash.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """What to export and keep elsewhere: the number of records and the newest hash."""

    count: int
    hash: str

    def __str__(self) -> str:
        return f"{self.count}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        """``COUNT:HASH`` as printed by ``waldstadt audit head``."""
        count, sep, digest = text.strip().partition(":")
        if not sep or not count.isdigit() or len(digest) != 64:
            raise ValueError(f"not COUNT:HASH (64 hex digits): {text!r}")
        return cls(int(count), digest.lower())


@dataclass(frozen=True, slots=True)
class ChainReport:
    """``ok`` when every record links to the one before and its HMAC matches (and, checked
    against an exported head, the chain still holds that head). ``unkeyed``: records of the
    prefix written before the key (SHA-256 only, sealed by the first keyed record)."""

    ok: bool
    checked: int
    head_hash: str
    bad_id: int | None = None
    reason: str | None = None
    unkeyed: int = 0

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.checked, self.head_hash)


def _fail(checked: int, prev: str, unkeyed: int, bad_id: int | None, reason: str) -> ChainReport:
    return ChainReport(False, checked, prev, bad_id, reason, unkeyed)


def verify_records(
    records: Iterable[AuditRecord], key: AuditKey, head: ChainHead | None = None
) -> ChainReport:
    """Check a chain given oldest first (pure; :meth:`AuditRepository.verify` feeds it),
    against ``head`` when one was exported."""
    prev, checked, unkeyed, keyed = GENESIS, 0, 0, False
    for record in records:
        where = f"record {record.id}"
        if record.prev_hash != prev:
            reason = "prev_hash does not match the record before it (removed, reordered, rewritten)"
            return _fail(checked, prev, unkeyed, record.id, f"{where}: {reason}")
        if hmac.compare_digest(chain_hash(record.entry, prev, key), record.hash):
            keyed = True
        elif not keyed and unkeyed_hash(record.entry, prev) == record.hash:
            unkeyed += 1
        else:
            reason = (
                "content does not match its hash (edited, recomputed without the key, or "
                f"keyed with another key than {key.key_id})"
            )
            return _fail(checked, prev, unkeyed, record.id, f"{where}: {reason}")
        prev = record.hash
        checked += 1
        if head is not None and checked == head.count and prev != head.hash:
            reason = f"is not the exported head {head}: the chain was rewritten"
            return _fail(checked, prev, unkeyed, record.id, f"{where} {reason}")
    if unkeyed and not keyed:
        reason = (
            f"the {unkeyed} newest records are not keyed (recomputed without the key, or "
            "written before it and never sealed)"
        )
        return _fail(checked, prev, unkeyed, None, reason)
    if head is not None and checked < head.count:
        reason = f"truncated: {checked} records, the exported head {head} had {head.count}"
        return _fail(checked, prev, unkeyed, None, reason)
    return ChainReport(True, checked, prev, unkeyed=unkeyed)


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


def row_values(entry: AuditEntry, prev_hash: str, digest: str) -> dict[str, Any]:
    """The ``audit_log`` row of ``entry`` with its hashes."""
    return {
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
    }


def seal_entry(ts: datetime, unkeyed: int, unkeyed_head: str, key: AuditKey) -> AuditEntry:
    """The record that closes a prefix written before the key (``unkeyed`` records ending in
    ``unkeyed_head``); its HMAC makes a later rewrite of that prefix visible."""
    return AuditEntry(
        ts=ts,
        actor="waldstadt",
        role="system",
        action=SEAL_ACTION,
        target="audit_log",
        result="sealed",
        new_value={"unkeyed_records": unkeyed, "unkeyed_head": unkeyed_head, "key_id": key.key_id},
    )


class AuditRepository:
    """Append and read; there is deliberately no update or delete."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, entry: AuditEntry, key: AuditKey) -> AuditRecord:
        """Append after the current tail under ``key``; returns the stored record with its
        hashes. A tail written before the key is sealed first (:func:`seal_entry`)."""
        for _ in range(_ATTEMPTS):
            async with write_tx(self._engine, f"audit {entry.action} on {entry.target}") as conn:
                await serialize_on(conn, "audit_log:tail")
                prev_hash = await self._seal_if_unkeyed(conn, key, entry.ts)
                if prev_hash is None:
                    continue
                stored = await self._insert(conn, entry, prev_hash, key)
            if stored is not None:
                return stored
        raise StoreError(
            f"audit {entry.action} on {entry.target}",
            f"lost the race for the chain tail {_ATTEMPTS} times",
        )

    async def seal(self, key: AuditKey, now: datetime) -> AuditRecord | None:
        """Seal a tail written before the key (at start-up, so that a chain is never left
        ending unkeyed); None when there was nothing to seal."""
        async with write_tx(self._engine, "seal the audit log") as conn:
            await serialize_on(conn, "audit_log:tail")
            tail = await self._tail(conn)
            if tail is None or not _unkeyed_tail(tail, key):
                return None
            unkeyed = await self._count(conn)
            return await self._insert(
                conn, seal_entry(now, unkeyed, tail.hash, key), tail.hash, key
            )

    async def _seal_if_unkeyed(
        self, conn: AsyncConnection, key: AuditKey, ts: datetime
    ) -> str | None:
        """The hash to append after (sealing an unkeyed tail first); None: lost a race."""
        tail = await self._tail(conn)
        if tail is None:
            return GENESIS
        if not _unkeyed_tail(tail, key):
            return tail.hash
        unkeyed = await self._count(conn)
        seal = await self._insert(conn, seal_entry(ts, unkeyed, tail.hash, key), tail.hash, key)
        return None if seal is None else seal.hash

    async def _tail(self, conn: AsyncConnection) -> AuditRecord | None:
        row = (
            await conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(1))
        ).first()
        return None if row is None else _record(row)

    async def _count(self, conn: AsyncConnection) -> int:
        return int((await conn.execute(select(func.count()).select_from(audit_log))).scalar_one())

    async def _insert(
        self, conn: AsyncConnection, entry: AuditEntry, prev_hash: str, key: AuditKey
    ) -> AuditRecord | None:
        digest = chain_hash(entry, prev_hash, key)
        stmt = insert_ignoring(conn, audit_log, "prev_hash").returning(audit_log.c.id)
        new_id = (
            await conn.execute(stmt, row_values(entry, prev_hash, digest))
        ).scalar_one_or_none()
        return None if new_id is None else AuditRecord(int(new_id), entry, prev_hash, digest)

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

    async def verify(self, key: AuditKey, head: ChainHead | None = None) -> ChainReport:
        """Walk the whole log and check the chain under ``key`` (and against ``head``)."""
        return verify_records([record async for record in self._all()], key, head)


def _unkeyed_tail(tail: AuditRecord, key: AuditKey) -> bool:
    """The tail was hashed the way records were before the key (so it needs a seal)."""
    if hmac.compare_digest(chain_hash(tail.entry, tail.prev_hash, key), tail.hash):
        return False
    return unkeyed_hash(tail.entry, tail.prev_hash) == tail.hash
