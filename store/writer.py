"""Group commit for the ingest path: many producers, one transaction per batch.

Each producer (an MQTT message handler, a Modbus poll) calls :meth:`ReadingWriter.write` with
its readings and is resumed only after the batch that carried them has been committed, so it
may acknowledge its message then (F5). A batch is whatever queued up while the previous one
was being committed (classic group commit: no added latency when idle), capped at
``max_batch`` readings; ``max_delay_s`` > 0 additionally waits that long for company. The
queue is bounded (F11): when the database falls behind, producers wait in ``write`` instead
of growing memory without limit. The writer keeps one database connection for its batches
(a :class:`~store.readings.ReadingSession`), opened again after a failed batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType

from kernel.readings import Reading
from store.readings import ReadingRepository, ReadingSession, WriteResult

#: Called with the batch's result once it committed, or with the error that failed it.
Committed = Callable[[WriteResult | Exception], None]
_Item = tuple[Sequence[Reading], "asyncio.Future[WriteResult] | Committed"]
log = logging.getLogger(__name__)


class ReadingWriter:
    """``async with ReadingWriter(repo, now=clock.now) as writer: await writer.write(rs)``.

    ``now`` stamps the mirror outbox entries (injected: no clock reads here). A failed batch
    fails every ``write`` call that was in it, with the store's error; nothing is retried
    behind the caller's back.
    """

    def __init__(
        self,
        repository: ReadingRepository,
        *,
        now: Callable[[], datetime],
        max_batch: int = 5_000,
        max_delay_s: float = 0.0,
        flush_calls: int = 0,
        max_queued_calls: int = 10_000,
    ) -> None:
        self._repository = repository
        self._now = now
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.flush_calls = flush_calls
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_queued_calls)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadingWriter:
        if self._task is not None:
            raise RuntimeError("ReadingWriter is not re-entrant")
        self._task = asyncio.create_task(self._run(), name="store.reading-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._queue.join()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def write(self, readings: Sequence[Reading]) -> WriteResult:
        """Queue readings; return after their batch committed, with that batch's result."""
        return await (await self.submit(readings))

    async def submit(self, readings: Sequence[Reading]) -> asyncio.Future[WriteResult]:
        """Queue readings and return at once (waiting only while the queue is full) with a
        future that completes when their batch has committed. For consumers that must keep
        receiving while earlier messages commit, and acknowledge each one when its future is
        done."""
        if self._task is None:
            raise RuntimeError("ReadingWriter used outside 'async with'")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((readings, future))
        return future

    async def submit_callback(self, readings: Sequence[Reading], committed: Committed) -> None:
        """Like :meth:`submit`, with a callback instead of a future: ``committed`` is called
        with the batch's :class:`WriteResult` right after the commit (or with the error).
        Saves a future and a loop turn per call on the ingest path. It must not raise (what
        it raises is logged) and must not block."""
        if self._task is None:
            raise RuntimeError("ReadingWriter used outside 'async with'")
        await self._queue.put((readings, committed))

    async def _run(self) -> None:
        async with self._repository.session() as session:
            await self._loop(session)

    async def _loop(self, session: ReadingSession) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch = [first]
            size = len(first[0])
            deadline = loop.time() + self.max_delay_s
            while size < self.max_batch:
                if not self._queue.empty():
                    item = self._queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or 0 < self.flush_calls <= len(batch):
                        break
                    try:
                        async with asyncio.timeout(remaining):
                            item = await self._queue.get()
                    except TimeoutError:
                        break
                batch.append(item)
                size += len(item[0])
            await self._flush(session, batch)

    async def _flush(self, session: ReadingSession, batch: list[_Item]) -> None:
        readings = [r for rs, _ in batch for r in rs]
        outcome: WriteResult | Exception
        try:
            outcome = await session.write(readings, now=self._now())
        except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch
            outcome = exc
        try:
            for _, target in batch:
                if isinstance(target, asyncio.Future):
                    if target.done():
                        continue
                    if isinstance(outcome, Exception):
                        target.set_exception(outcome)
                    else:
                        target.set_result(outcome)
                    continue
                try:
                    target(outcome)
                except Exception:
                    log.exception("ReadingWriter: a commit callback raised")
        finally:
            for _ in batch:
                self._queue.task_done()
