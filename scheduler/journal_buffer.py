"""The command journal's persisted buffer: batches not yet in the database, in a local file.

Why: the journal (:mod:`scheduler.journal`) records what the writer applied in the store's
command table. While the database cannot take it (locked, restarting, unreachable) the
batches wait in memory -- and in this file, so that a process killed meanwhile loses none of
them: the next start records them before it re-applies the commands in force (F3).

Format: JSON lines, one batch per line::

    {"at": "2026-07-01T12:00:00+00:00",
     "outcomes": [[command_id, target, value, issued_at, expires_at, status, detail], ...]}

:meth:`JournalBuffer.append` writes and fsyncs before it returns. A last line cut short is
the batch whose ``append`` was interrupted by a crash (it never returned): it is skipped with
a warning. The file is emptied once everything in it is recorded (:meth:`JournalBuffer.clear`)
and rewritten whole -- a new file, fsynced, renamed over the old one -- when the journal sheds
outcomes beyond its bound (:meth:`JournalBuffer.rewrite`).

Where (:func:`buffer_path`): next to a SQLite database (``var/waldstadt.sqlite`` →
``var/waldstadt.sqlite.commands-buffer.jsonl``); for PostgreSQL, which has no local file, in
``$XDG_STATE_HOME/waldstadt/`` (default ``~/.local/state/waldstadt/``) under the server's host,
port and database name; none for an in-memory SQLite database (the buffer is then memory only).

Every method blocks (file I/O, fsync): the journal calls them in a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from store.commands import Command as StoredCommandRow
from store.commands import CommandOutcome
from store.engine import database_file, server_name

log = logging.getLogger(__name__)

SUFFIX = ".commands-buffer.jsonl"


@dataclass(frozen=True, slots=True)
class JournalBatch:
    """One writer batch's journal entries; ``at`` is when the writer handed them over (the
    rows' issue time) on the service's clock."""

    at: datetime
    outcomes: tuple[CommandOutcome, ...]


def encode_batch(batch: JournalBatch) -> str:
    """One JSON line (without the newline)."""
    rows = [
        [
            o.command.command_id,
            o.command.target,
            o.command.value,
            o.command.issued_at.isoformat(),
            o.command.expires_at.isoformat(),
            o.status,
            o.detail,
        ]
        for o in batch.outcomes
    ]
    return json.dumps({"at": batch.at.isoformat(), "outcomes": rows}, separators=(",", ":"))


def decode_batch(line: str) -> JournalBatch:
    """The batch of one line; ``ValueError`` (or ``KeyError``/``TypeError``) when it is not
    one."""
    data = json.loads(line)
    outcomes = tuple(
        CommandOutcome(
            StoredCommandRow(
                str(cid),
                str(target),
                value,
                datetime.fromisoformat(issued),
                datetime.fromisoformat(expires),
            ),
            str(status),
            None if detail is None else str(detail),
        )
        for cid, target, value, issued, expires, status, detail in data["outcomes"]
    )
    return JournalBatch(datetime.fromisoformat(data["at"]), outcomes)


def buffer_path(database_url: str, state_dir: Path | None = None) -> Path | None:
    """Where the journal of the database at ``database_url`` keeps its buffer (module doc)."""
    file = database_file(database_url)
    if file is not None:
        return file.with_name(file.name + SUFFIX)
    server = server_name(database_url)
    if server is None:
        return None  # an in-memory SQLite database
    base = state_dir or Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "waldstadt" / (re.sub(r"[^A-Za-z0-9._-]", "_", server) + SUFFIX)


class JournalBuffer:
    """The buffer file at ``path`` (created with its directory on the first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existed = self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if not existed:
                _fsync_dir(self.path.parent)  # the new file's name survives a crash too
        return self._fd

    def load(self) -> tuple[list[JournalBatch], int]:
        """The batches in the file, and how many lines could not be read."""
        if not self.path.exists():
            return [], 0
        lines = self.path.read_text(encoding="utf-8").split("\n")
        batches: list[JournalBatch] = []
        bad: list[int] = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                batches.append(decode_batch(line))
            except (ValueError, KeyError, TypeError):
                bad.append(i)
        if bad and bad[-1] == len(lines) - 1:  # no newline after it: a write cut short
            log.warning("%s: last line cut short by a crash, skipped", self.path)
            bad.pop()
        if bad:
            log.error("%s: unreadable line(s) %s skipped", self.path, [i + 1 for i in bad])
        return batches, len(bad)

    def append(self, batches: Sequence[JournalBatch]) -> None:
        """Append and fsync: once this returns, the batches survive a crash."""
        if not batches:
            return
        fd = self._open()
        _write_all(fd, "".join(encode_batch(b) + "\n" for b in batches).encode("utf-8"))
        os.fsync(fd)

    def clear(self) -> None:
        """Everything in the file is recorded: empty it."""
        fd = self._open()
        os.ftruncate(fd, 0)
        os.fsync(fd)

    def rewrite(self, batches: Sequence[JournalBatch]) -> None:
        """Replace the file by ``batches`` (after shedding), atomically."""
        self.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, "".join(encode_batch(b) + "\n" for b in batches).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def remove(self) -> None:
        """Delete the (empty) file at a clean stop."""
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalMetrics:
    """The buffer's depth, the outcomes shed beyond the bound, the failed records."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.depth = Gauge(
            "waldstadt_journal_buffered_outcomes",
            "Command journal outcomes waiting for the database (buffered, persisted)",
            registry=registry,
        )
        self.dropped = Counter(
            "waldstadt_journal_dropped_outcomes_total",
            "Command journal outcomes shed beyond the buffer's bound",
            registry=registry,
        )
        self.failures = Counter(
            "waldstadt_journal_record_failures_total",
            "Command journal records the database did not take (retried)",
            registry=registry,
        )

    def unregister(self) -> None:
        for metric in (self.depth, self.dropped, self.failures):
            self.registry.unregister(metric)


def shed_outcomes(batches: Sequence[JournalBatch], count: int) -> tuple[list[JournalBatch], int]:
    """``batches`` without ``count`` outcomes: first those a newer outcome for the same
    target and kind supersedes (oldest first), then the oldest; and how many went."""
    newest: dict[tuple[str, object], tuple[int, int]] = {}
    for bi, batch in enumerate(batches):
        for oi, o in enumerate(batch.outcomes):
            newest[_key(o)] = (bi, oi)
    drop: set[tuple[int, int]] = set()
    for bi, batch in enumerate(batches):
        for oi, o in enumerate(batch.outcomes):
            if len(drop) >= count:
                break
            if newest[_key(o)] != (bi, oi):
                drop.add((bi, oi))
    for bi, batch in enumerate(batches):
        for oi in range(len(batch.outcomes)):
            if len(drop) >= count:
                break
            drop.add((bi, oi))
    kept = []
    for bi, batch in enumerate(batches):
        rest = tuple(o for oi, o in enumerate(batch.outcomes) if (bi, oi) not in drop)
        if rest:
            kept.append(JournalBatch(batch.at, rest))
    return kept, len(drop)


def _key(o: CommandOutcome) -> tuple[str, object]:
    value = o.command.value
    return o.command.target, value.get("kind") if isinstance(value, dict) else None


__all__ = [
    "SUFFIX",
    "JournalBatch",
    "JournalBuffer",
    "JournalMetrics",
    "buffer_path",
    "decode_batch",
    "shed_outcomes",
]
