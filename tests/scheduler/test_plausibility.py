"""The plausibility gate on a real store (SQLite and PostgreSQL): each kind of implausible
reading is quarantined with its reason, counted, alarmed once per device and reason; plausible
ones pass — late ones judged against their stored neighbours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel.clock import ManualClock
from kernel.readings import Reading
from scheduler.observability import Metrics
from scheduler.plausibility import (
    MAX_UNKNOWN_ALARMS,
    SOURCE_CYCLE,
    SOURCE_TELEMETRY,
    ReadingGate,
)
from scheduler.site import Site
from store import Store
from tests.scheduler.test_metering_job import make_site

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
METER = "h01-meter"  # SDM630: float32 kWh, no wrap; rating 43,470 W (a house connection)
IMP = "import_energy_wh"


def wh(value: float, ts: datetime, channel: str = IMP, device: str = METER) -> Reading:
    unit = "W" if channel.endswith("_w") else "Wh"
    return Reading(device, channel, value, unit, ts)


def quarantined(metrics: Metrics, source: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "waldstadt_readings_quarantined_total", {"source": source, "reason": reason}
    )
    return value or 0.0


async def gate_for(store: Store, site: Site | None = None) -> tuple[ReadingGate, Metrics]:
    metrics = Metrics()
    return ReadingGate(store, ManualClock(NOW), metrics, site or make_site(["h01"])), metrics


async def admit_and_store(gate: ReadingGate, store: Store, rs: list[Reading]) -> list[Reading]:
    kept = await gate.admit(rs, SOURCE_TELEMETRY)
    await store.readings.write(kept, now=NOW)
    return kept


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (wh(1.0, NOW, device="ghost-meter"), "unknown_device"),
        (wh(1.0, NOW, channel="soc_pct"), "unknown_channel"),
        (wh(1.0, datetime(9999, 12, 31, tzinfo=UTC)), "ts_out_of_window"),
        (wh(1.0, datetime(1, 1, 1, tzinfo=UTC)), "ts_out_of_window"),
        (wh(1.0, NOW + timedelta(minutes=6)), "ts_out_of_window"),
        (wh(-5000.0, NOW), "negative_counter"),
        (wh(1e9, NOW, channel="power_w"), "power_above_rating"),
    ],
)
async def test_a_reading_without_history_is_quarantined_for_its_reason(
    store: Store, reading: Reading, reason: str
) -> None:
    gate, metrics = await gate_for(store)
    assert await gate.admit([reading, reading], SOURCE_TELEMETRY) == []
    stored = await store.quarantine.recent()
    assert [s.reading.reason for s in stored] == [reason, reason]
    assert stored[0].reading.device_id == reading.device_id
    assert stored[0].reading.raw_value == repr(reading.value)
    assert quarantined(metrics, "mqtt", reason) == 2
    alarms = await store.alarms.active()
    assert [a.alarm_key for a in alarms] == [f"plausibility:{reading.device_id}:{reason}"]
    # the same again later, and from a fresh gate (a restarted service): still one alarm
    await gate.admit([reading], SOURCE_TELEMETRY)
    fresh, _ = await gate_for(store)
    await fresh.admit([reading], SOURCE_TELEMETRY)
    assert len(await store.alarms.history(NOW - timedelta(days=1))) == 1
    assert await store.readings.count() == 0


async def test_plausible_readings_pass_and_the_cycle_skips_the_device_checks(store: Store) -> None:
    gate, metrics = await gate_for(store)
    rs = [wh(1_000_000.0 + 50 * k, NOW - (10 - k) * MIN) for k in range(10)]
    rs.append(wh(2_300.0, NOW, channel="power_w"))
    assert await admit_and_store(gate, store, rs) == rs
    # the cycle reads the site's devices by their drivers: no device or channel check there
    odd = wh(1.0, NOW, channel="temperature_c", device="ghost")
    assert await gate.admit([odd], SOURCE_CYCLE) == [odd]
    assert not gate.counts
    assert metrics.registry.get_sample_value("waldstadt_readings_quarantined_total") is None


async def test_a_counter_that_falls_or_jumps_is_quarantined_and_the_next_good_one_passes(
    store: Store,
) -> None:
    gate, metrics = await gate_for(store)
    t = NOW - 10 * MIN
    await admit_and_store(gate, store, [wh(1_000_000.0, t)])
    # the spoofed message of the issue: +3,003.87 kWh within a minute
    spoof = wh(1_000_000.0 + 3_003_870.0, t + MIN)
    fell = wh(999_000.0, t + 2 * MIN)
    good = wh(1_000_100.0, t + 3 * MIN)
    assert await admit_and_store(gate, store, [spoof, fell, good]) == [good]
    reasons = [s.reading.reason for s in await store.quarantine.recent()]
    assert reasons == ["counter_decrease", "power_above_rating"]
    assert quarantined(metrics, "mqtt", "counter_decrease") == 1
    keys = {a.alarm_key for a in await store.alarms.active()}
    assert keys == {
        f"plausibility:{METER}:counter_decrease",
        f"plausibility:{METER}:power_above_rating",
    }


async def test_a_fresh_gate_finds_the_newest_value_in_the_store(store: Store) -> None:
    gate, _ = await gate_for(store)
    await admit_and_store(gate, store, [wh(5_000.0, NOW - 5 * MIN)])
    fresh, _ = await gate_for(store)
    assert await fresh.admit([wh(4_000.0, NOW)], SOURCE_CYCLE) == []
    assert fresh.counts == {"counter_decrease": 1}


async def test_late_readings_are_judged_against_their_stored_neighbours(store: Store) -> None:
    gate, _ = await gate_for(store)
    t = NOW - 30 * MIN
    await admit_and_store(gate, store, [wh(10_000.0, t), wh(10_200.0, t + 10 * MIN)])
    between = wh(10_100.0, t + 5 * MIN)  # fits
    above_next = wh(10_300.0, t + 6 * MIN)  # higher than the reading after it
    below_prev = wh(9_000.0, t + 7 * MIN)  # lower than the reading before it
    redelivered = wh(10_000.0, t)  # the same reading again
    got = await admit_and_store(gate, store, [between, above_next, below_prev, redelivered])
    assert got == [between, redelivered]
    stored = await store.quarantine.recent()
    assert [(s.reading.ts, s.reading.reason) for s in stored] == [
        (t + 7 * MIN, "counter_decrease"),
        (t + 6 * MIN, "counter_decrease"),
    ]
    assert "the reading after it" in stored[1].reading.detail


async def test_a_recorded_exchange_and_a_wrap_pass(store: Store) -> None:
    exchange: dict[str, Any] = {
        "at": (NOW - 7 * MIN).isoformat(),
        "old_final_wh": {IMP: 1_000_070, "export_energy_wh": 500},
        "new_initial_wh": {IMP: 0, "export_energy_wh": 0},
    }
    gate, _ = await gate_for(store, make_site(["h01"], exchanges={"h01": [exchange]}))
    rs = [wh(1_000_000.0, NOW - 10 * MIN), wh(30.0, NOW - 5 * MIN), wh(60.0, NOW)]
    assert await admit_and_store(gate, store, rs) == rs

    # a SunSpec 203 meter counts in an acc32 register: it wraps at 2^32 Wh, and only there
    gate, _ = await gate_for(store, make_site(["h02"], driver="sunspec_meter_203"))
    top = 2**32
    wrap = [
        wh(top - 400.0, NOW - 10 * MIN, device="h02-meter"),
        wh(100.0, NOW - 5 * MIN, device="h02-meter"),
    ]
    assert await admit_and_store(gate, store, wrap) == wrap
    not_at_top = wh(50.0, NOW, device="h02-meter")
    assert await gate.admit([not_at_top], SOURCE_TELEMETRY) == []


async def test_a_telemetry_device_of_the_broker_section_is_known_with_any_channel(
    store: Store,
) -> None:
    site = make_site(["h01"])
    site = site.model_copy(
        update={"broker": site.broker.model_copy(update={"telemetry_devices": ["weather-1"]})}
    )
    gate, _ = await gate_for(store, site)
    r = Reading("weather-1", "temperature_c", 21.5, "°C", NOW)
    assert await gate.admit([r], SOURCE_TELEMETRY) == [r]
    ghost = Reading("weather-2", "temperature_c", 21.5, "°C", NOW)
    assert await gate.admit([ghost], SOURCE_TELEMETRY) == []


async def test_a_flood_of_unknown_devices_is_counted_but_not_alarmed_one_by_one(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    gate, metrics = await gate_for(store)
    flood = [wh(1.0, NOW, device=f"ghost-{k}") for k in range(MAX_UNKNOWN_ALARMS + 50)]
    for r in flood:
        assert await gate.admit([r], SOURCE_TELEMETRY) == []
    assert quarantined(metrics, "mqtt", "unknown_device") == len(flood)
    assert len(await store.alarms.active()) == MAX_UNKNOWN_ALARMS
    summary = [r for r in caplog.records if "more than 100 unknown devices" in r.getMessage()]
    assert len(summary) == 1
    # a known device's fault is still alarmed after the flood
    await gate.admit([wh(-1.0, NOW)], SOURCE_TELEMETRY)
    assert len(await store.alarms.active()) == MAX_UNKNOWN_ALARMS + 1
