"""The group-commit writer: commit callbacks, early flush, a failed batch does not stop it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from kernel.readings import Reading
from store import ReadingWriter, Store
from store.engine import make_engine
from store.errors import StoreError
from store.readings import ReadingRepository, WriteResult
from tests.store.conftest import T0


def batch(device: str, n: int = 3) -> list[Reading]:
    return [Reading(device, "power_w", float(i), "W", T0 + timedelta(seconds=i)) for i in range(n)]


async def test_callbacks_run_after_the_commit_with_the_batch_result(store: Store) -> None:
    outcomes: dict[str, WriteResult | Exception] = {}
    seen_stored: dict[str, int] = {}

    def committed(device: str) -> Callable[[WriteResult | Exception], None]:
        def record(outcome: WriteResult | Exception) -> None:
            outcomes[device] = outcome

        return record

    async with ReadingWriter(store.readings, now=lambda: T0, max_delay_s=0.05) as writer:
        for i in range(5):
            await writer.submit_callback(batch(f"dev-{i}"), committed(f"dev-{i}"))
        async with asyncio.timeout(10):
            while len(outcomes) < 5:  # noqa: ASYNC110 - waits for the callbacks
                await asyncio.sleep(0.01)
        for i in range(5):
            seen_stored[f"dev-{i}"] = await store.readings.count(f"dev-{i}")
    assert all(isinstance(o, WriteResult) for o in outcomes.values())
    assert seen_stored == {f"dev-{i}": 3 for i in range(5)}
    # one batch carried them all (the delay gathered them): one shared result
    assert len({id(o) for o in outcomes.values()}) == 1


async def test_flush_calls_commits_before_the_delay_is_up(store: Store) -> None:
    async with ReadingWriter(
        store.readings, now=lambda: T0, max_delay_s=30.0, flush_calls=4
    ) as writer:
        start = time.monotonic()
        async with asyncio.timeout(10):
            results = await asyncio.gather(*(writer.write(batch(f"d{i}")) for i in range(4)))
        elapsed = time.monotonic() - start
    assert elapsed < 10
    assert [r.inserted for r in results] == [12] * 4


async def test_a_raising_callback_is_logged_and_the_others_still_run(store: Store) -> None:
    called: list[str] = []

    def bad(outcome: WriteResult | Exception) -> None:
        called.append("bad")
        raise RuntimeError("callback bug")

    def good(outcome: WriteResult | Exception) -> None:
        called.append("good")

    async with ReadingWriter(store.readings, now=lambda: T0, max_delay_s=0.05) as writer:
        await writer.submit_callback(batch("a"), bad)
        await writer.submit_callback(batch("b"), good)
        after = await writer.write(batch("c"))
    assert called == ["bad", "good"]
    assert after.inserted >= 3
    assert await store.readings.count() == 9


async def test_a_failed_batch_fails_its_callers_and_the_writer_goes_on(tmp_path: Path) -> None:
    """No schema at first (permanent error for that batch); once migrated, the same writer
    commits again over a fresh connection."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"
    engine = make_engine(url)
    outcomes: list[WriteResult | Exception] = []
    try:
        async with ReadingWriter(ReadingRepository(engine), now=lambda: T0) as writer:
            await writer.submit_callback(batch("x"), outcomes.append)
            async with asyncio.timeout(10):
                while not outcomes:  # noqa: ASYNC110 - waits for the callback
                    await asyncio.sleep(0.01)
            async with Store(url):  # migrates
                pass
            result = await writer.write(batch("y"))
    finally:
        await engine.dispose()
    assert isinstance(outcomes[0], StoreError)
    assert "no such table" in str(outcomes[0])
    assert result.inserted == 3
