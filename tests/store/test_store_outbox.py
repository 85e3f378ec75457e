"""The mirror outbox without a server: bounded, oldest dropped and counted, durable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.readings import Quality, Reading
from store import Store, StoreSettings
from store.outbox import reading_line, reading_point_line
from tests.store.conftest import T0


def readings(n: int, start: int = 0) -> list[Reading]:
    return [
        Reading("pv-1", "power_w", float(i), "W", T0 + timedelta(seconds=i))
        for i in range(start, start + n)
    ]


async def test_full_outbox_drops_the_oldest_and_counts_them(store_url: str) -> None:
    settings = StoreSettings(mirror_readings=True, outbox_capacity=25)
    async with Store(store_url, settings=settings) as store:
        first = await store.readings.write(readings(20), now=T0)
        second = await store.readings.write(readings(20, start=20), now=T0)
        assert (first.mirrored, first.mirror_dropped) == (20, 0)
        assert (second.mirrored, second.mirror_dropped) == (20, 15)
        stats = await store.outbox.stats()
        assert (stats.pending, stats.dropped, stats.sent, stats.capacity) == (25, 15, 0, 25)
        batch = await store.outbox.peek(100)
        assert batch is not None
        assert batch.lines == [reading_line(r) for r in readings(25, start=15)]


async def test_only_new_readings_with_a_value_are_queued(store_url: str) -> None:
    settings = StoreSettings(mirror_readings=True, outbox_capacity=100)
    async with Store(store_url, settings=settings) as store:
        rs = [*readings(5), Reading.unavailable("pv-1", "soc_pct", T0)]
        assert (await store.readings.write(rs, now=T0)).mirrored == 5
        assert (await store.readings.write(rs, now=T0)).mirrored == 0  # redelivery
        assert (await store.outbox.stats()).pending == 5


async def test_the_outbox_survives_a_restart(store_url: str) -> None:
    settings = StoreSettings(mirror_readings=True, outbox_capacity=10)
    async with Store(store_url, settings=settings) as store:
        await store.readings.write(readings(12), now=T0)
    async with Store(store_url, settings=settings) as reopened:
        stats = await reopened.outbox.stats()
        assert (stats.pending, stats.dropped) == (10, 2)
        batch = await reopened.outbox.peek(3)
        assert batch is not None
        assert batch.lines == [reading_line(r) for r in readings(3, start=2)]
        assert await reopened.outbox.remove(batch) == 3
        assert await reopened.outbox.remove(batch) == 0  # removing twice is harmless
        assert (await reopened.outbox.stats()).sent == 3


async def test_enqueue_of_other_lines_and_removal_keep_counts_consistent(store: Store) -> None:
    lines = [f"interval,member_id=m1 energy_wh={i} {i}" for i in range(7)]
    assert await store.outbox.enqueue(lines, now=T0) == 0
    batch = await store.outbox.peek(4)
    assert batch is not None
    assert batch.lines == lines[:4]
    await store.outbox.remove(batch)
    stats = await store.outbox.stats()
    assert (stats.pending, stats.sent) == (3, 4)
    rest = await store.outbox.peek(100)
    assert rest is not None
    assert rest.lines == lines[4:]


def test_reading_line_is_influx_line_protocol() -> None:
    line = reading_line(Reading("inv 7", "power_w", 1500.0, "W", T0))
    assert line == (
        "reading,channel=power_w,device_id=inv\\ 7,quality=good,unit=W value=1500 "
        f"{int(T0.timestamp()) * 10**9}"
    )
    with pytest.raises(ValueError, match="no value"):
        reading_line(Reading.unavailable("inv-7", "power_w", T0))


@settings(max_examples=300)
@given(
    device_id=st.text(min_size=1, max_size=20),
    channel=st.text(min_size=1, max_size=20),
    unit=st.text(max_size=5),
    value=st.floats(allow_nan=False, allow_infinity=False),
    ts=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    quality=st.sampled_from([Quality.GOOD, Quality.SUBSTITUTE]),
)
def test_fast_line_encoding_equals_influxdb_clients_point(
    device_id: str, channel: str, unit: str, value: float, ts: datetime, quality: Quality
) -> None:
    reading = Reading(device_id, channel, value, unit, ts, quality)
    assert reading_line(reading) == reading_point_line(reading)
