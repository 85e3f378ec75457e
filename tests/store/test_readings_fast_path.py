"""The raw-driver write path of raw readings (no mirror) against SQLAlchemy's (mirror on):
the same rows, the same keys, the same errors; a session survives a dropped connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

import store.readings as readings_module
from kernel.readings import Quality, Reading
from store import Store, StoreSettings
from store.errors import StoreError, StoreUnavailable
from store.readings import sqlite_ts
from tests.db_fixtures import PG_ADMIN_DB, PG_HOST, PG_PORT
from tests.store.conftest import T0


def readings(device: str, n: int = 30) -> list[Reading]:
    out = [
        Reading(device, "power_w", 1000.0 + i, "W", T0 + timedelta(seconds=i, microseconds=i))
        for i in range(n)
    ]
    out.append(Reading(device, "soc_pct", 55.5, "%", T0, Quality.SUBSTITUTE))
    out.append(Reading.unavailable(device, "voltage_l1_v", T0))
    return out


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 3, 29, 1, 15, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 15, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_sqlite_ts_is_the_text_sqlalchemy_stores(ts: datetime) -> None:
    process = sqlite.DATETIME().bind_processor(sqlite.dialect())  # type: ignore[no-untyped-call]
    assert process is not None
    assert sqlite_ts(ts) == process(ts.replace(tzinfo=None))


async def test_both_write_paths_store_the_same_keys_and_rows(store: Store, store_url: str) -> None:
    fast_first, sqla_first = readings("fast-first"), readings("sqla-first")
    mirrored = StoreSettings(mirror_readings=True)
    async with Store(store_url, settings=mirrored) as via_sqlalchemy:
        assert (await store.readings.write(fast_first, now=T0)).inserted == 32
        assert (await via_sqlalchemy.readings.write(sqla_first, now=T0)).inserted == 32
        # each path recognises the other's rows as duplicates: the keys are stored identically
        again_sqla = await via_sqlalchemy.readings.write(fast_first, now=T0)
        again_fast = await store.readings.write(sqla_first, now=T0)
    assert (again_sqla.inserted, again_fast.inserted) == (0, 0)
    end = T0 + timedelta(hours=1)
    for channel in ("power_w", "soc_pct", "voltage_l1_v"):
        fast = await store.readings.between("fast-first", channel, T0, end)
        sqla = await store.readings.between("sqla-first", channel, T0, end)
        assert fast == [r for r in fast_first if r.channel == channel]
        assert [(r.channel, r.value, r.unit, r.ts, r.quality) for r in fast] == [
            (r.channel, r.value, r.unit, r.ts, r.quality) for r in sqla
        ]


async def test_inserted_counts_only_new_rows_and_duplicates_inside_the_batch(
    store: Store,
) -> None:
    a = Reading("m", "power_w", 1.0, "W", T0)
    b = Reading("m", "power_w", 2.0, "W", T0)  # same key: the first one wins
    async with store.readings.session() as session:
        first = await session.write([a, b, *readings("m", 5)], now=T0)
        second = await session.write(readings("m", 10), now=T0)
    assert (first.received, first.inserted) == (9, 7)
    assert (second.received, second.inserted) == (12, 5)
    assert await store.readings.latest("m", "power_w", T0) == a


def _is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


async def test_a_value_the_schema_refuses_is_a_permanent_error_and_the_session_goes_on(
    store: Store, store_url: str
) -> None:
    if not _is_postgresql(store_url):
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    too_long = Reading("d" * 129, "power_w", 1.0, "W", T0)
    async with store.readings.session() as session:
        with pytest.raises(StoreError, match="write 1 readings"):
            await session.write([too_long], now=T0)
        assert (await session.write(readings("ok", 3), now=T0)).inserted == 5


async def test_a_session_whose_connection_was_dropped_reports_it_then_reconnects(
    store: Store, store_url: str
) -> None:
    if not _is_postgresql(store_url):
        pytest.skip("needs a server that can drop the connection")
    database = make_url(store_url).database
    async with store.readings.session() as session:
        assert (await session.write(readings("before", 3), now=T0)).inserted == 5
        admin = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", database=PG_ADMIN_DB
        )
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()
        with pytest.raises(StoreUnavailable):
            await session.write(readings("lost", 3), now=T0)
        assert (await session.write(readings("after", 3), now=T0)).inserted == 5
    assert await store.readings.count("lost") == 0
    assert await store.readings.count("after") == 5


async def test_odd_text_and_extreme_values_round_trip_exactly(store: Store) -> None:
    device = 'zähler "7"\\,=\n\t'
    values = [5e-324, 0.1, 1.7976931348623157e308, -123456.789012345678, 2.0**53 + 1]
    batch = [
        Reading(device, f"ch_{i}", v, "µW", T0 + timedelta(microseconds=i))
        for i, v in enumerate(values)
    ]
    assert (await store.readings.write(batch, now=T0)).inserted == len(batch)
    for r in batch:
        back = await store.readings.latest(device, r.channel)
        assert back == r
        assert back is not None
        assert str(back.value) == str(r.value)


async def test_the_public_aiosqlite_calls_write_the_same(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without aiosqlite's private one-hop hook the three public calls do the same work."""
    monkeypatch.setattr(readings_module, "_ONE_HOP", False)
    first = await store.readings.write(readings("m"), now=T0)
    again = await store.readings.write(readings("m"), now=T0)
    assert (first.inserted, again.inserted) == (32, 0)
    assert await store.readings.between("m", "power_w", T0, T0 + timedelta(1)) == [
        r for r in readings("m") if r.channel == "power_w"
    ]
