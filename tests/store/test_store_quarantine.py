"""Quarantined readings on SQLite and PostgreSQL: kept apart with the reason, absurd instants
and non-numbers included, counted, purged with the raw readings' retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.readings import Reading
from store import Store, StoreSettings
from store.quarantine import RAW_VALUE_CHARS, QuarantinedReading
from tests.store.conftest import T0


def q(
    reason: str,
    *,
    device: str = "hh01-meter",
    ts: datetime | None = T0,
    raw: str | None = "1.5",
    received: datetime = T0,
) -> QuarantinedReading:
    return QuarantinedReading(
        received, "mqtt", device, "import_energy_wh", ts, raw, reason, f"because {reason}"
    )


async def test_quarantined_readings_are_kept_apart_with_their_reason(store: Store) -> None:
    year_9999 = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    year_1 = datetime(1, 1, 1, tzinfo=UTC)
    rows = [
        q("ts_out_of_window", ts=year_9999),
        q("ts_out_of_window", ts=year_1),
        q("counter_decrease", raw="-5000.0"),
        q("unknown_device", device="ghost", raw="x" * 1000, ts=None),
    ]
    assert await store.quarantine.add(rows) == 4
    newest = await store.quarantine.recent()
    assert [s.reading.reason for s in newest] == [
        "unknown_device",
        "counter_decrease",
        "ts_out_of_window",
        "ts_out_of_window",
    ]
    assert newest[2].reading.ts == year_1
    assert newest[3].reading.ts == year_9999
    assert newest[0].reading.ts is None
    assert newest[0].reading.raw_value == "x" * RAW_VALUE_CHARS
    assert newest[1].reading == rows[2]
    only = await store.quarantine.recent(device_id="ghost")
    assert [s.reading.device_id for s in only] == ["ghost"]
    assert await store.quarantine.counts() == {
        "ts_out_of_window": 2,
        "counter_decrease": 1,
        "unknown_device": 1,
    }
    # nothing of it is a raw reading: metering cannot see it
    assert await store.readings.count() == 0


async def test_retention_purges_quarantine_with_the_raw_readings(store_url: str) -> None:
    async with Store(store_url, settings=StoreSettings(raw_retention=timedelta(days=1))) as store:
        old, new = T0 - timedelta(days=3), T0
        await store.quarantine.add([q("unknown_device", received=old), q("x", received=new)])
        await store.readings.write([Reading("m", "power_w", 1.0, "W", old)], now=old)
        assert await store.purge_expired_readings(T0) == 1
        assert [s.reading.reason for s in await store.quarantine.recent()] == ["x"]
        assert await store.quarantine.counts(since=T0) == {"x": 1}


async def test_first_after_finds_the_next_reading(store: Store) -> None:
    rs = [
        Reading("m", "import_energy_wh", float(i), "Wh", T0 + timedelta(minutes=i)) for i in (0, 5)
    ]
    await store.readings.write(rs, now=T0)
    got = await store.readings.first_after("m", "import_energy_wh", T0)
    assert got == rs[1]
    assert await store.readings.first_after("m", "import_energy_wh", rs[1].ts) is None
