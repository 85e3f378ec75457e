"""The metering job on a real store: meter counters as a meter delivers them → exact intervals.

The helpers here (a site, counters growing with a profile) are shared with the settlement
job's tests.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kernel.readings import Quality, Reading
from scheduler.metering_job import EXPORT_CHANNEL, IMPORT_CHANNEL, MeteringJob
from scheduler.site import Site, site_from_data
from store import Store
from store.intervals import Interval
from vpp.metering.intervals import register_intervals
from vpp.metering.registers import RegisterReading

QH = timedelta(minutes=15)
T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)

Profile = Callable[[datetime], float]


def make_site(
    member_ids: Sequence[str],
    *,
    key: dict[str, Any] | None = None,
    membership: dict[str, dict[str, Any]] | None = None,
    exchanges: dict[str, list[dict[str, Any]]] | None = None,
    driver: str = "eastron_sdm630",
) -> Site:
    """A site with one grid meter (``driver``, an SDM630) per member and one community of
    all of them (``membership``: joined/left/participation_pct per member id;
    ``exchanges``: the recorded exchanges of a member's meter)."""
    return site_from_data(
        {
            "site": {"name": "Testquartier", "latitude": 51.37, "longitude": 7.70},
            "devices": [
                {
                    "name": f"{m}-meter",
                    "driver": driver,
                    "host": "127.0.0.1",
                    "unit_id": 1 + i,
                    "exchanges": (exchanges or {}).get(m, []),
                }
                for i, m in enumerate(member_ids)
            ],
            "tariffs": [
                {
                    "name": "standard",
                    "valid_from": "2026-01-01T00:00:00+01:00",
                    "supplier_price_eur_per_kwh": "0.32",
                    "community_price_eur_per_kwh": "0.22",
                    "feed_in_price_eur_per_kwh": "0.08",
                }
            ],
            "members": [{"id": m, "name": m.upper(), "meter": f"{m}-meter"} for m in member_ids],
            "communities": [
                {
                    "id": "quartier",
                    "name": "Energiegemeinschaft",
                    "members": [{"member": m, **(membership or {}).get(m, {})} for m in member_ids],
                    "keys": [key or {"kind": "dynamic"}],
                    "tariffs": ["standard"],
                }
            ],
        }
    )


def household(base_w: float, seed: int) -> Profile:
    """A load that varies through the day (W), never negative."""

    def watts(t: datetime) -> float:
        h = t.hour + t.minute / 60
        return base_w * (1 + 0.6 * math.sin(h / 24 * 2 * math.pi * 2 + seed)) + 37 * (seed % 5)

    return watts


def pv_surplus(peak_w: float) -> Profile:
    """Export at the grid point: PV surplus around noon UTC, nothing at night (W)."""

    def watts(t: datetime) -> float:
        h = t.hour + t.minute / 60
        return max(0.0, peak_w * math.sin((h - 5) / 14 * math.pi)) if 5 <= h <= 19 else 0.0

    return watts


def counter(
    device: str,
    channel: str,
    start: datetime,
    end: datetime,
    watts: Profile,
    *,
    step_s: int = 60,
    start_wh: int = 1_000_000,
    reset_at: datetime | None = None,
    kwh_resolution: bool = False,
) -> list[Reading]:
    """A counter read every ``step_s`` in ``[start, end]``: whole Wh, growing with ``watts``.

    ``reset_at``: the counter restarts at 0 at that instant. ``kwh_resolution``: the value is
    sent as an SDM630 does: kWh with two decimals in a float32, times 1000 (not whole Wh).
    """
    out: list[Reading] = []
    energy = float(start_wh)
    t = start
    while t <= end:
        if reset_at is not None and t - timedelta(seconds=step_s) < reset_at <= t:
            energy = watts(t) * (t - reset_at).total_seconds() / 3600
        value = _float32(round(energy / 10) / 100) * 1000 if kwh_resolution else float(int(energy))
        out.append(Reading(device, channel, value, "Wh", t))
        energy += watts(t) * step_s / 3600
        t += timedelta(seconds=step_s)
    return out


def _float32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def growth_wh(readings: Iterable[Reading], start: datetime, end: datetime) -> int:
    """What a counter grew by from ``start`` to ``end`` (readings there)."""
    values = [round(r.value) for r in readings if r.value is not None and start <= r.ts <= end]
    assert values == sorted(values), "a counter that falls is no growth"
    return values[-1] - values[0]


def without(readings: list[Reading], start: datetime, end: datetime) -> list[Reading]:
    """The readings outside ``[start, end)`` (a meter that was silent then)."""
    return [r for r in readings if not start <= r.ts < end]


async def stored_intervals(
    store: Store, member_id: str, channel: str, start: datetime, end: datetime
) -> dict[datetime, tuple[int, Quality]]:
    rows = await store.intervals.for_member(member_id, start, end, channel)
    return {
        r.interval.interval_start: (int(r.interval.energy_wh), r.interval.quality) for r in rows
    }


# -- tests ---------------------------------------------------------------------------------


async def test_ended_quarter_hours_are_recorded_exactly_once(store: Store) -> None:
    site = make_site(["h01"])
    end = T0 + 2 * QH * 4
    imp = counter("h01-meter", IMPORT_CHANNEL, T0, end, household(500, 1))
    exp = counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(3000))
    await store.readings.write(imp + exp, now=end)
    job = MeteringJob(store, site)

    appended = await job.close_quarter_hours(end + timedelta(seconds=5))

    assert appended == 2 * 8  # two channels, eight quarter-hours of two hours
    got = await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, end)
    value = {r.ts: int(r.value or 0) for r in imp}
    for k in range(8):
        qh = T0 + k * QH
        assert got[qh] == (value[qh + QH] - value[qh], Quality.GOOD)
    exported = await stored_intervals(store, "h01", EXPORT_CHANNEL, T0, end)
    assert sum(e for e, _ in exported.values()) == growth_wh(exp, T0, end) > 0
    assert await job.close_quarter_hours(end + timedelta(seconds=65)) == 0
    # a fresh job (the service restarted) finds the watermark in the store: nothing again
    assert await MeteringJob(store, site).close_quarter_hours(end + timedelta(minutes=2)) == 0


async def test_a_quarter_hour_without_a_reading_after_its_end_stays_open(store: Store) -> None:
    site = make_site(["h01"])
    end = T0 + QH + timedelta(minutes=14)  # last reading 14 min into the second quarter-hour
    readings = [
        *counter("h01-meter", IMPORT_CHANNEL, T0, end, household(400, 2)),
        *counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(0)),
    ]
    await store.readings.write(readings, now=end)
    job = MeteringJob(store, site)
    assert await job.close_quarter_hours(T0 + 2 * QH + timedelta(seconds=5)) == 2
    assert list(await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, T0 + 4 * QH)) == [T0]
    # the counter's next reading (the same counter, one minute later)
    later = counter("h01-meter", IMPORT_CHANNEL, T0, end + timedelta(minutes=1), household(400, 2))
    await store.readings.write(later[-1:], now=end)
    assert await job.close_quarter_hours(T0 + 2 * QH + timedelta(minutes=1, seconds=5)) == 1
    got = await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, T0 + 4 * QH)
    assert list(got) == [T0, T0 + QH]


async def test_a_gap_is_interpolated_and_restated_when_the_readings_arrive(store: Store) -> None:
    site = make_site(["h01"])
    end = T0 + 12 * QH
    imp = counter("h01-meter", IMPORT_CHANNEL, T0, end, household(800, 3))
    exp = counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(2000))
    gap = (T0 + timedelta(minutes=40), T0 + timedelta(minutes=95))
    await store.readings.write(without(imp, *gap) + without(exp, *gap), now=end)
    job = MeteringJob(store, site)
    await job.close_quarter_hours(end + timedelta(seconds=5))

    before = await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, end)
    substitutes = [qh for qh, (_, q) in before.items() if q is Quality.SUBSTITUTE]
    assert substitutes == [T0 + k * QH for k in range(2, 7)]  # 08:30 … 09:45 touch the gap
    assert sum(e for e, _ in before.values()) == growth_wh(imp, T0, end)

    # the meter's buffered readings arrive late (the bus redelivers them)
    await store.readings.write(imp + exp, now=end + QH)
    appended = await job.close_quarter_hours(end + QH)
    assert appended >= 2 * len(substitutes)
    after = await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, end)
    assert all(q is Quality.GOOD for _, q in after.values())
    assert sum(e for e, _ in after.values()) == growth_wh(imp, T0, end)
    history = await store.intervals.for_member(
        "h01", T0 + 2 * QH, T0 + 3 * QH, IMPORT_CHANNEL, history=True
    )
    assert [(h.version, h.restated) for h in history] == [(1, False), (2, True)]


async def test_a_counter_that_falls_is_no_reset_and_bills_nothing_after_the_fall(
    store: Store,
) -> None:
    """The register restarts at 0 at 08:52:30 with no exchange recorded: the readings after
    it bill nothing (no reset counting the whole register again); the quarter-hours before
    it are metered as they were, and the fall is listed."""
    site = make_site(["h01"])
    end = T0 + 8 * QH
    reset = T0 + timedelta(minutes=52, seconds=30)
    imp = counter("h01-meter", IMPORT_CHANNEL, T0, end, household(900, 4), reset_at=reset)
    exp = counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(0))
    await store.readings.write(imp + exp, now=end)
    job = MeteringJob(store, site)
    await job.close_quarter_hours(end + timedelta(seconds=5))
    got = await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, end)
    assert list(got) == [T0, T0 + QH, T0 + 2 * QH]  # up to 08:45, the last reading before
    assert all(q is Quality.GOOD for _, q in got.values())
    assert sum(e for e, _ in got.values()) == growth_wh(imp, T0, T0 + 3 * QH)
    assert any("fell" in reason for reason in job.rejected[("h01", IMPORT_CHANNEL)])


async def test_closing_every_quarter_hour_gives_the_one_computation_over_all_readings(
    store: Store,
) -> None:
    """Readings arrive as the day goes on, with a meter silent for 2 h (longer than the look
    back): the intervals recorded step by step are those of one computation afterwards."""
    site = make_site(["h01", "h02"])
    end = T0 + 5 * 4 * QH
    gap = (T0 + timedelta(minutes=61), T0 + timedelta(minutes=182))
    streams = {
        ("h01", IMPORT_CHANNEL): counter("h01-meter", IMPORT_CHANNEL, T0, end, household(600, 5)),
        ("h01", EXPORT_CHANNEL): counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(500)),
        ("h02", IMPORT_CHANNEL): without(
            counter("h02-meter", IMPORT_CHANNEL, T0, end, household(300, 6), step_s=20), *gap
        ),
        ("h02", EXPORT_CHANNEL): without(
            counter("h02-meter", EXPORT_CHANNEL, T0, end, pv_surplus(4000), step_s=20), *gap
        ),
    }
    job = MeteringJob(store, site, lookback=timedelta(hours=1))
    t = T0
    while t < end + QH:
        batch = [r for rs in streams.values() for r in rs if t - QH < r.ts <= t]
        await store.readings.write(batch, now=t)
        await job.close_quarter_hours(t + timedelta(seconds=5))
        t += QH
    for (member, channel), readings in streams.items():
        expected = register_intervals(
            "x", [RegisterReading(r.ts, int(r.value or 0)) for r in readings]
        )
        got = await stored_intervals(store, member, channel, T0, end)
        assert [(iv.qh_start, iv.energy_wh) for iv in expected] == [
            (qh, e) for qh, (e, _) in got.items()
        ]
        quality = [q for _, q in got.values()]
        assert (Quality.SUBSTITUTE in quality) == (member == "h02")
        # the job's cache (what settlement reads) holds what the store holds
        cached = job.cache.get(member, channel, T0, end)
        assert {qh: (iv.energy_wh, iv.quality.value) for qh, iv in cached.items()} == {
            qh: (e, "L1" if q is Quality.GOOD else "L2") for qh, (e, q) in got.items()
        }


async def test_kwh_floats_give_whole_wh_that_sum_to_the_counter_growth(store: Store) -> None:
    site = make_site(["h01"])
    end = T0 + 4 * QH
    imp = counter("h01-meter", IMPORT_CHANNEL, T0, end, household(700, 7), kwh_resolution=True)
    exp = counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(0), kwh_resolution=True)
    assert any(r.value != int(r.value or 0) for r in imp)  # float32 kWh × 1000
    await store.readings.write(imp + exp, now=end)
    await MeteringJob(store, site).close_quarter_hours(end + timedelta(seconds=5))
    got = await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, end)
    assert len(got) == 4
    assert all(e % 10 == 0 for e, _ in got.values())  # 0.01 kWh resolution survives exactly
    assert sum(e for e, _ in got.values()) == growth_wh(imp, T0, end)


async def test_a_negative_counter_reading_is_ignored_and_named(store: Store) -> None:
    site = make_site(["h01", "h02"])
    end = T0 + 2 * QH
    good = [
        *counter("h01-meter", IMPORT_CHANNEL, T0, end, household(500, 1)),
        *counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(0)),
        *counter("h02-meter", EXPORT_CHANNEL, T0, end, pv_surplus(0)),
    ]
    imp = counter("h02-meter", IMPORT_CHANNEL, T0, end, household(500, 2))
    bad = [*imp[:5], Reading("h02-meter", IMPORT_CHANNEL, -5.0, "Wh", imp[5].ts), *imp[6:]]
    unavailable = Reading.unavailable("h01-meter", IMPORT_CHANNEL, T0 + timedelta(seconds=30))
    await store.readings.write([*good, *bad, unavailable], now=end)
    job = MeteringJob(store, site)
    assert await job.close_quarter_hours(end + timedelta(seconds=5)) == 4 * 2
    assert list(job.rejected) == [("h02", IMPORT_CHANNEL)]
    [reason] = job.rejected[("h02", IMPORT_CHANNEL)]
    assert "h02-meter/import_energy_wh at 2026-06-10T08:05:00+00:00: negative counter" in reason
    # the readings around it meter the quarter-hour (a 2-minute step is no gap)
    got = await stored_intervals(store, "h02", IMPORT_CHANNEL, T0, end)
    assert [q for _, q in got.values()] == [Quality.GOOD, Quality.GOOD]
    assert sum(e for e, _ in got.values()) == growth_wh(imp, T0, end)
    assert len(await stored_intervals(store, "h01", IMPORT_CHANNEL, T0, end)) == 2
    # logged once, not every quarter-hour
    await job.close_quarter_hours(end + timedelta(minutes=1))
    assert len(job.rejected[("h02", IMPORT_CHANNEL)]) == 1


async def test_phantom_quarter_hours_of_a_database_from_before_are_restated(store: Store) -> None:
    """A demo restarted on its database replayed the morning: a second counter, a few Wh
    below the first, interleaved with it; the old metering billed each fall as a reset of the
    whole register and recorded such quarter-hours as substitutes (L2). They are open (not L1),
    so the next run meters them again, from the plausible readings, as a new version."""
    site = make_site(["h01"])
    end = T0 + 4 * QH
    first = counter("h01-meter", IMPORT_CHANNEL, T0, end, household(600, 1))
    replay = [
        Reading(r.device_id, r.channel, (r.value or 0) - 3, r.unit, r.ts + timedelta(seconds=20))
        for r in first
    ]
    exp = counter("h01-meter", EXPORT_CHANNEL, T0, end, pv_surplus(0))
    await store.readings.write(first + replay + exp, now=end)
    phantom = Interval(
        h01 := "h01", IMPORT_CHANNEL, T0 + QH, Decimal(17_324_855), Quality.SUBSTITUTE
    )
    await store.intervals.record([phantom], now=end)
    await MeteringJob(store, site).close_quarter_hours(end + timedelta(seconds=5))
    got = await stored_intervals(store, h01, IMPORT_CHANNEL, T0, end)
    assert got[T0 + QH][0] < 1_000  # 600 W for a quarter-hour, not 17,325 kWh
    assert sum(e for e, _ in got.values()) == growth_wh(first, T0, end)
    history = await store.intervals.for_member(
        h01, T0 + QH, T0 + 2 * QH, IMPORT_CHANNEL, history=True
    )
    assert [h.version for h in history] == [1, 2]
