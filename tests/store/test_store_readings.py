"""Raw readings: idempotent batches, commit before return, queries, retention."""

from __future__ import annotations

import asyncio
import itertools
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.readings import Quality, Reading
from store import ReadingWriter, Store, migrate
from store.engine import make_engine
from store.errors import StoreError, StoreUnavailable
from store.readings import ReadingRepository
from tests.store.conftest import T0


def batch(n: int, device: str = "meter-1", start_s: int = 0) -> list[Reading]:
    return [
        Reading(device, "power_w", float(i) * 1.5, "W", T0 + timedelta(seconds=start_s + i))
        for i in range(n)
    ]


async def test_the_same_batch_twice_is_stored_once(store: Store) -> None:
    readings = [*batch(200), Reading.unavailable("meter-1", "voltage_l1_v", T0)]
    first = await store.readings.write(readings, now=T0)
    again = await store.readings.write(readings, now=T0)
    assert (first.received, first.inserted) == (201, 201)
    assert (again.received, again.inserted, again.duplicates) == (201, 0, 201)
    stored = await store.readings.between("meter-1", "power_w", T0, T0 + timedelta(hours=1))
    assert stored == readings[:200]


async def test_duplicates_inside_one_batch_keep_the_first(store: Store) -> None:
    a = Reading("m", "power_w", 1.0, "W", T0)
    b = Reading("m", "power_w", 2.0, "W", T0)
    result = await store.readings.write([a, b], now=T0)
    assert (result.received, result.inserted) == (2, 1)
    assert await store.readings.latest("m", "power_w") == a


async def test_a_partly_new_batch_inserts_only_the_new_readings(store: Store) -> None:
    await store.readings.write(batch(10), now=T0)
    result = await store.readings.write(batch(20), now=T0)
    assert result.inserted == 10
    assert len(await store.readings.between("meter-1", "power_w", T0, T0 + timedelta(1))) == 20


async def test_unavailable_values_round_trip_as_none(store: Store) -> None:
    r = Reading.unavailable("inv-7", "power_w", T0)
    await store.readings.write([r], now=T0)
    back = await store.readings.latest("inv-7", "power_w")
    assert back is not None
    assert back.value is None
    assert back.quality is Quality.UNAVAILABLE
    assert back.ts == T0
    assert back.ts.utcoffset() == timedelta(0)


async def test_latest_respects_the_instant(store: Store) -> None:
    await store.readings.write(batch(5), now=T0)
    at = await store.readings.latest("meter-1", "power_w", T0 + timedelta(seconds=2))
    assert at is not None
    assert at.ts == T0 + timedelta(seconds=2)
    assert await store.readings.latest("meter-1", "power_w", T0 - timedelta(seconds=1)) is None


async def test_a_write_is_visible_to_another_process_when_it_returns(
    store: Store, open_store: Callable[..., Store]
) -> None:
    async with open_store() as other:
        await store.readings.write(batch(50), now=T0)
        seen = await other.readings.between("meter-1", "power_w", T0, T0 + timedelta(1))
    assert len(seen) == 50


async def test_retention_purge_removes_only_old_raw_readings(store: Store) -> None:
    old = batch(10, device="old")
    recent = batch(10, device="recent", start_s=int(timedelta(days=100).total_seconds()))
    await store.readings.write(old + recent, now=T0)
    purge_at = T0 + timedelta(days=100 + store.settings.raw_retention.days)
    removed = await store.purge_expired_readings(purge_at)
    assert removed == 10
    assert await store.readings.latest("old", "power_w") is None
    assert await store.readings.latest("recent", "power_w") is not None
    assert await store.purge_expired_readings(purge_at) == 0


async def test_group_commit_writer_batches_many_producers(store: Store) -> None:
    async with ReadingWriter(store.readings, now=lambda: T0, max_delay_s=0.2) as writer:
        results = await asyncio.gather(
            *(writer.write(batch(10, device=f"dev-{i}")) for i in range(30))
        )
    assert all(r.inserted >= 10 for r in results)
    # 30 producers of 10 readings went through fewer transactions than producers
    assert len({id(r) for r in results}) < 30
    for i in range(30):
        assert len(await store.readings.between(f"dev-{i}", "power_w", T0, T0 + timedelta(1))) == 10


async def test_group_commit_writer_hands_a_failure_to_its_callers(tmp_path: Path) -> None:
    """A database without the schema: permanent, and every caller of the batch hears it."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}")
    try:
        async with ReadingWriter(ReadingRepository(engine), now=lambda: T0) as writer:
            results = await asyncio.gather(
                writer.write(batch(1)), writer.write(batch(1, device="b")), return_exceptions=True
            )
    finally:
        await engine.dispose()
    assert len(results) == 2
    for result in results:
        assert isinstance(result, StoreError)
        assert "no such table" in str(result)


async def test_an_unreachable_database_is_a_transient_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
        try:
            with pytest.raises(StoreUnavailable, match="write 1 readings"):
                await ReadingRepository(engine).write(batch(1), now=T0)
        finally:
            await engine.dispose()


async def test_the_writer_refuses_use_outside_its_context(store: Store) -> None:
    writer = ReadingWriter(store.readings, now=lambda: T0)
    with pytest.raises(RuntimeError, match="outside"):
        await writer.write(batch(1))


KEYS = st.tuples(
    st.sampled_from(["m1", "m2"]), st.sampled_from(["power_w", "soc_pct"]), st.integers(0, 5)
)


@settings(max_examples=25, deadline=None)
@given(
    items=st.lists(st.tuples(KEYS, st.floats(-1e6, 1e6)), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_any_batching_and_redelivery_stores_each_key_once_first_wins(
    migrated_sqlite: str, items: list[tuple[tuple[str, str, int], float]], cuts: list[int]
) -> None:
    prefix = uuid.uuid4().hex[:8]
    readings = [
        Reading(f"{prefix}-{dev}", ch, value, "", T0 + timedelta(seconds=sec))
        for (dev, ch, sec), value in items
    ]
    bounds = sorted({0, len(readings), *(c for c in cuts if c <= len(readings))})
    batches = [readings[a:b] for a, b in itertools.pairwise(bounds)]
    expected: dict[tuple[str, str, datetime], float | None] = {}
    for r in readings:
        expected.setdefault((r.device_id, r.channel, r.ts), r.value)

    async def scenario() -> dict[tuple[str, str, datetime], float | None]:
        async with Store(migrated_sqlite, migrate=False) as store:
            inserted = 0
            for b in [*batches, *reversed(batches)]:  # everything delivered twice
                inserted += (await store.readings.write(b, now=T0)).inserted
            assert inserted == len(expected)
            stored = {}
            for dev in {k[0] for k in expected}:
                for ch in ("power_w", "soc_pct"):
                    for r in await store.readings.between(dev, ch, T0, T0 + timedelta(1)):
                        stored[(r.device_id, r.channel, r.ts)] = r.value
            return stored

    assert asyncio.run(scenario()) == expected


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('prop') / 'prop.db'}"
    migrate.upgrade(url)
    return url


async def test_opening_a_store_on_an_unreachable_server_is_a_transient_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(StoreUnavailable, match="migrate the schema"):
            async with Store(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none"):
                pass
