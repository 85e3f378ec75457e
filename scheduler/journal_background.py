"""The command journal off the cycle's path, durable: it never drops a record below its bound.

:class:`BackgroundJournal` is what the service's writer journals through. A batch is kept
in a bounded buffer -- in memory and fsynced to a local file
(:mod:`scheduler.journal_buffer`) before :meth:`BackgroundJournal.record` returns -- and
recorded in the database by one task that retries with capped, jittered backoff while the
database cannot take it (locked, restarting, unreachable). A process killed meanwhile finds
the batches in the file at its next start and records them before it re-applies the
commands in force. Meanwhile :meth:`BackgroundJournal.health` says why the journal cannot
write (the service's readiness shows it) and a gauge shows the buffer's depth.

**The bound**: :data:`MAX_BUFFERED_OUTCOMES` outcomes (one per command the writer applied or
failed; about 15 MB of file). A site with 100 setpoints a quarter-hour and 100 luminaires
fills it in about a day of database outage, a 10,000-luminaire site (a level renewed every
3.5 minutes) in about 17 minutes. Beyond it the journal sheds down to 90 % of the bound:
first the outcomes of a target and kind that a newer buffered outcome supersedes (the
restart needs only the newest per target and kind), then the oldest; each shed is an ERROR
log line (the alarm), counted in ``waldstadt_journal_dropped_outcomes_total`` and named in
the readiness detail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry

from kernel.backoff import Backoff
from kernel.commands import CommandResult
from kernel.errors import TransientError, WaldstadtError
from scheduler.journal import StoreJournal, outcomes
from scheduler.journal_buffer import (
    JournalBatch,
    JournalBuffer,
    JournalMetrics,
    buffer_path,
    shed_outcomes,
)
from store import Store
from store.commands import CommandOutcome

log = logging.getLogger(__name__)


class OutcomeJournal(Protocol):
    """Where :class:`BackgroundJournal` records (:class:`scheduler.journal.StoreJournal`)."""

    async def record_outcomes(self, entries: Sequence[CommandOutcome], now: datetime) -> None: ...


#: The buffer's bound in outcomes (see the module doc).
MAX_BUFFERED_OUTCOMES = 50_000
#: Outcomes per transaction while a backlog drains.
MAX_OUTCOMES_PER_RECORD = 5_000
#: Retries of a failed record, in real seconds.
RETRY = Backoff(initial_s=0.5, cap_s=10.0)
#: A record without an answer for this long (real s) makes the journal unhealthy.
STALL_S = 10.0
#: A record without an answer for this long (real s) is abandoned and tried again.
ATTEMPT_TIMEOUT_S = 120.0
#: How long a start waits (real s) for a previous process's buffer to be recorded.
REPLAY_TIMEOUT_S = 60.0


class JournalBacklog(TransientError):
    """The buffered outcomes could not be recorded in time (at start: before the restart's
    re-application, which needs them in the database)."""

    def __init__(self, outcomes: int, where: str, reason: str) -> None:
        self.outcomes = outcomes
        self.where = where
        self.reason = reason
        super().__init__(f"{outcomes} buffered journal outcome(s) {where} not recorded: {reason}")


@dataclass(frozen=True, slots=True)
class JournalHealth:
    """Whether the journal records (``ok``) and what it is doing or why not."""

    ok: bool
    detail: str


class BackgroundJournal:
    """The journal off the cycle's path, durable below its bound (see the module doc).

    :meth:`record` stamps the batch with the clock's time, persists it (one fsync for every
    batch that arrived meanwhile) and returns; one task records the buffered batches in order,
    together, in transactions of at most :data:`MAX_OUTCOMES_PER_RECORD` outcomes, retrying
    with ``retry`` backoff while the database does not take them. Entering replays what a
    previous process left in the file; :meth:`replay` waits for it to be recorded. Leaving
    records what is buffered (for at most ``stop_timeout_s`` real seconds); what the database
    still refuses stays in the file for the next start.
    """

    def __init__(
        self,
        journal: OutcomeJournal,
        now: Callable[[], datetime],
        *,
        buffer_path: Path | None = None,
        max_outcomes: int = MAX_BUFFERED_OUTCOMES,
        retry: Backoff = RETRY,
        stall_s: float = STALL_S,
        stop_timeout_s: float = 10.0,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_outcomes < 1:
            raise ValueError("max_outcomes must be at least 1")
        self._journal = journal
        self._now = now
        self._file = JournalBuffer(buffer_path) if buffer_path is not None else None
        self._where = f"in {buffer_path}" if buffer_path is not None else "in memory only"
        self.max_outcomes = max_outcomes
        self._retry = retry
        self._stall_s = stall_s
        self._stop_timeout_s = stop_timeout_s
        self._registry = registry
        self._metrics: JournalMetrics | None = None
        self._rng = rng or random.Random()
        self._pending: deque[JournalBatch] = deque()
        self._unsaved: list[JournalBatch] = []
        self._depth = 0  # outcomes in _pending
        self._in_flight = 0  # batches at the head of _pending being recorded
        self._io = asyncio.Lock()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None  # why the last record failed (None: it did not)
        self._file_error: str | None = None
        self._attempt_since: float | None = None  # time.monotonic() of the record under way
        self._replayed = 0
        #: outcomes shed beyond the bound since start
        self.dropped = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> BackgroundJournal:
        if self._registry is not None:
            self._metrics = JournalMetrics(self._registry)
        if self._file is not None:
            batches, unreadable = await asyncio.to_thread(self._file.load)
            self._count_dropped(unreadable, "unreadable line(s) in the buffer file")
            if batches:
                self._pending.extend(batches)
                self._depth = self._replayed = sum(len(b.outcomes) for b in batches)
                log.info("command journal: %d outcome(s) from %s to record", self._depth,
                         self._file.path)  # fmt: skip
        self._set_depth()
        self._task = asyncio.create_task(self._run(), name="command journal")
        self._wake.set()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        try:
            await self.flush(timeout_s=self._stop_timeout_s)
        except TimeoutError:
            pass
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = self._depth + sum(len(b.outcomes) for b in self._unsaved)
        if left and self._file is not None and self._file_error is None:
            log.warning("command journal: %d outcome(s) kept %s for the next start", left,
                        self._where)  # fmt: skip
        elif left:
            log.error("command journal: %d outcome(s) not recorded and not kept (%s)", left,
                      self._file_error or self._where)  # fmt: skip
        elif self._file is not None:
            await asyncio.to_thread(self._file.remove)
        if self._file is not None:
            self._file.close()
        if self._metrics is not None:
            self._metrics.unregister()

    async def replay(self, timeout_s: float = REPLAY_TIMEOUT_S) -> int:
        """Wait (real ``timeout_s``) until what a previous process left is recorded; how many
        outcomes that was. Raises :class:`JournalBacklog` when the database does not take it."""
        try:
            await self.flush(timeout_s=timeout_s)
        except TimeoutError:
            raise JournalBacklog(self._depth, self._where, self._error or "no answer") from None
        return self._replayed

    # -- recording --------------------------------------------------------------------------

    async def record(self, results: Sequence[CommandResult]) -> None:
        """Buffer a batch's journal entries durably; the task records them."""
        if self._task is None:
            raise RuntimeError("BackgroundJournal used outside 'async with'")
        now = self._now()
        entries = outcomes(results, now)
        if not entries:
            return
        self._unsaved.append(JournalBatch(now, tuple(entries)))
        async with self._io:
            if self._unsaved:  # else an earlier caller saved this batch with its own
                group, self._unsaved = self._unsaved, []
                await self._persist(group)
                self._pending.extend(group)
                self._depth += sum(len(b.outcomes) for b in group)
                if self._depth > self.max_outcomes:
                    await self._shed()
                self._set_depth()
                self._idle.clear()
        self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every buffered batch is recorded (``TimeoutError`` after real
        ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            while self._pending or self._unsaved:
                self._idle.clear()
                await self._idle.wait()

    def health(self) -> JournalHealth:
        """Recording, or why not, with the buffer's depth and where it is kept."""
        problems = []
        since = self._attempt_since
        if self._error is not None:
            problems.append(f"cannot write to the database ({self._error})")
        elif since is not None and (waited := time.monotonic() - since) >= self._stall_s:
            problems.append(f"no answer from the database for {waited:.0f} s")
        if self._file_error is not None:
            problems.append(f"buffer file not written ({self._file_error})")
        if not problems:
            return JournalHealth(True, f"recording; {self._depth} outcome(s) buffered")
        detail = "; ".join(problems)
        detail += f"; {self._depth} outcome(s) buffered {self._where} (bound {self.max_outcomes})"
        if self.dropped:
            detail += f"; {self.dropped} shed beyond the bound"
        return JournalHealth(False, detail)

    @property
    def depth(self) -> int:
        """Outcomes buffered (persisted, not yet recorded)."""
        return self._depth

    # -- the task ---------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                chunk = self._take_chunk()
                if await self._attempt(chunk):
                    failures = 0
                    await self._recorded(len(chunk))
                    continue
                failures += 1
                self._in_flight = 0
                await asyncio.sleep(self._retry.delay_s(failures, self._rng))
            self._idle.set()

    def _take_chunk(self) -> list[JournalBatch]:
        chunk: list[JournalBatch] = []
        size = 0
        for batch in self._pending:
            if chunk and size + len(batch.outcomes) > MAX_OUTCOMES_PER_RECORD:
                break
            chunk.append(batch)
            size += len(batch.outcomes)
        self._in_flight = len(chunk)
        return chunk

    async def _attempt(self, chunk: Sequence[JournalBatch]) -> bool:
        entries = [o for batch in chunk for o in batch.outcomes]
        self._attempt_since = time.monotonic()
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                await self._journal.record_outcomes(entries, chunk[-1].at)
        except (WaldstadtError, OSError, TimeoutError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._failed(reason, len(entries))
            return False
        except Exception as exc:  # a bug must not lose the journal: keep it, say it, retry
            log.exception("command journal: recording %d outcome(s) raised", len(entries))
            self._failed(f"{type(exc).__name__}: {exc}", len(entries))
            return False
        finally:
            self._attempt_since = None
        if self._error is not None:
            log.info("command journal records again (%d outcome(s) buffered)", self._depth)
            self._error = None
        return True

    def _failed(self, reason: str, size: int) -> None:
        if self._error is None:
            log.warning("command journal cannot record %d outcome(s): %s; %d buffered %s, "
                        "retrying", size, reason, self._depth, self._where)  # fmt: skip
        self._error = reason
        if self._metrics is not None:
            self._metrics.failures.inc()

    async def _recorded(self, batches: int) -> None:
        for _ in range(batches):
            self._depth -= len(self._pending.popleft().outcomes)
        self._in_flight = 0
        self._set_depth()
        if self._pending or self._file is None:
            return
        async with self._io:
            if not self._pending and not self._unsaved:
                try:
                    await asyncio.to_thread(self._file.clear)
                except OSError as exc:
                    self._file_failed(exc)

    # -- the buffer file and the bound ------------------------------------------------------

    async def _persist(self, group: Sequence[JournalBatch]) -> None:
        if self._file is None:
            return
        try:
            await asyncio.to_thread(self._file.append, group)
        except OSError as exc:
            self._file_failed(exc)
            return
        if self._file_error is not None:
            log.info("command journal: buffer file %s written again", self._file.path)
            self._file_error = None

    def _file_failed(self, exc: OSError) -> None:
        if self._file_error is None:
            log.error("command journal: buffer file not written, a crash would lose the "
                      "buffered outcomes: %s", exc)  # fmt: skip
        self._file_error = f"{type(exc).__name__}: {exc}"

    async def _shed(self) -> None:
        """Down to 90 % of the bound: superseded outcomes first, then the oldest (never the
        batches being recorded); then the file is rewritten."""
        target = self._depth - int(self.max_outcomes * 0.9)
        head = [self._pending.popleft() for _ in range(self._in_flight)]
        kept, shed = shed_outcomes(list(self._pending), target)
        self._pending = deque([*head, *kept])
        self._depth -= shed
        self._count_dropped(shed, f"the buffer reached its bound of {self.max_outcomes}")
        if self._file is not None:
            try:
                await asyncio.to_thread(self._file.rewrite, list(self._pending))
            except OSError as exc:
                self._file_failed(exc)

    def _count_dropped(self, n: int, why: str) -> None:
        if n <= 0:
            return
        self.dropped += n
        log.error("command journal: %d outcome(s) dropped: %s (database: %s)", n, why,
                  self._error or "no answer")  # fmt: skip
        if self._metrics is not None:
            self._metrics.dropped.inc(n)

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.depth.set(self._depth)


def service_journal(
    store: Store, now: Callable[[], datetime], registry: CollectorRegistry | None = None
) -> BackgroundJournal:
    """The service's journal: into ``store``, its buffer next to the store's database
    (:func:`scheduler.journal_buffer.buffer_path`), its metrics in ``registry``."""
    return BackgroundJournal(
        StoreJournal(store, now),
        now,
        buffer_path=buffer_path(store.url),
        registry=registry,
    )


__all__ = [
    "BackgroundJournal",
    "JournalBacklog",
    "JournalHealth",
    "OutcomeJournal",
    "service_journal",
]
