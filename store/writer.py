"""Group commit for the ingest path: many producers, one transaction per batch.

Each producer (an MQTT message handler, a Modbus poll) calls :meth:`ReadingWriter.write` with
its readings and is resumed only after the batch that carried them has been committed, so it
may acknowledge its message then (F5). A batch is whatever queued up while the previous one
was being committed (classic group commit: no added latency when idle), capped at
``max_batch`` readings; ``max_delay_s`` > 0 additionally waits that long for company. The
queue is bounded (F11): when the database falls behind, producers wait in ``write`` instead
of growing memory without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType

from protocols.model import Reading
from store.readings import ReadingRepository, WriteResult

_Item = tuple[Sequence[Reading], "asyncio.Future[WriteResult]"]


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
        max_queued_calls: int = 10_000,
    ) -> None:
        self._repository = repository
        self._now = now
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
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

    async def _run(self) -> None:
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
                    if remaining <= 0:
                        break
                    try:
                        async with asyncio.timeout(remaining):
                            item = await self._queue.get()
                    except TimeoutError:
                        break
                batch.append(item)
                size += len(item[0])
            await self._flush(batch)

    async def _flush(self, batch: list[_Item]) -> None:
        readings = [r for rs, _ in batch for r in rs]
        try:
            result = await self._repository.write(readings, now=self._now())
        except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(result)
        finally:
            for _ in batch:
                self._queue.task_done()
