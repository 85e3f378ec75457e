"""Balances (pure): bucketing of intervals and statements into local quarter-hours, days and
months across DST, no double counting when settlement runs of different lengths overlap, and the
member's CSV of it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from kernel.readings import Quality
from vpp.settlement.balances import (
    IntervalSums,
    IntervalValue,
    Resolution,
    SettledPeriod,
    bucket_bounds,
    bucketise,
    kwh,
    local_midnight,
    plain,
)
from vpp.settlement.csv_export import balances_csv
from vpp.settlement.runs import Statement

BERLIN = ZoneInfo("Europe/Berlin")
QH = timedelta(minutes=15)


def stmt(member: str, consumption: int) -> Statement:
    z = Decimal(0)
    return Statement(member, Decimal(consumption), z, z, z, Decimal(consumption), z, Decimal("0.1"))


def test_local_days_have_92_96_and_100_quarter_hours() -> None:
    def qhs(day: date) -> int:
        return len(bucket_bounds(Resolution.QUARTER_HOUR, day, day + timedelta(days=1), BERLIN))

    assert qhs(date(2026, 3, 29)) == 92  # spring forward
    assert qhs(date(2026, 6, 1)) == 96
    assert qhs(date(2026, 10, 25)) == 100  # fall back
    [(start, end)] = bucket_bounds(Resolution.DAY, date(2026, 10, 25), date(2026, 10, 26), BERLIN)
    assert end - start == timedelta(hours=25)


def test_months_start_at_local_midnight_of_the_first() -> None:
    bounds = bucket_bounds(Resolution.MONTH, date(2026, 3, 15), date(2026, 5, 1), BERLIN)
    assert bounds == [
        (datetime(2026, 3, 14, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)),
        (datetime(2026, 3, 31, 22, tzinfo=UTC), datetime(2026, 4, 30, 22, tzinfo=UTC)),
    ]


def test_a_day_run_replaces_the_quarter_hour_runs_it_covers_and_others_fill_in() -> None:
    d1 = datetime(2026, 6, 1, 22, tzinfo=UTC)  # 2026-06-02 local
    d2 = d1 + timedelta(days=1)
    periods = [
        SettledPeriod(d1, d1 + QH, stmt("a", 10)),  # covered by the day run: dropped
        SettledPeriod(d1, d2, stmt("a", 1000)),
        SettledPeriod(d2, d2 + QH, stmt("a", 7)),  # no day run on day 2: counted
        SettledPeriod(d2 + QH, d2 + 2 * QH, stmt("a", 8)),
    ]
    days = bucketise(Resolution.DAY, date(2026, 6, 2), date(2026, 6, 4), BERLIN, (), periods)
    assert [b.settled_wh.get("consumption_wh") for b in days] == [Decimal(1000), Decimal(15)]
    assert [b.statements for b in days] == [1, 2]
    qhs = bucketise(
        Resolution.QUARTER_HOUR, date(2026, 6, 2), date(2026, 6, 3), BERLIN, (), periods
    )
    assert qhs[0].settled_wh["consumption_wh"] == Decimal(10)  # the day run fits no quarter-hour
    assert all(not b.settled for b in qhs[1:])


def test_intervals_sum_per_channel_and_count_substitute_quarter_hours_once() -> None:
    t = datetime(2026, 6, 1, 22, tzinfo=UTC)

    def iv(channel: str, k: int, wh: str, q: Quality = Quality.GOOD) -> IntervalValue:
        return IntervalValue(channel, t + k * QH, Decimal(wh), q)

    intervals = [
        iv("import_energy_wh", 0, "100.5"),
        iv("export_energy_wh", 0, "0", Quality.SUBSTITUTE),
        iv("import_energy_wh", 1, "99.5", Quality.SUBSTITUTE),
        iv("export_energy_wh", 1, "20", Quality.SUBSTITUTE),
    ]
    [day] = bucketise(Resolution.DAY, date(2026, 6, 2), date(2026, 6, 3), BERLIN, intervals)
    assert day.quarter_hours == 2
    assert day.substitute_quarter_hours == 2
    assert {k: kwh(v) for k, v in day.metered_wh.items()} == {
        "import_energy_kwh": "0.2",
        "export_energy_kwh": "0.02",
    }


def test_decimals_print_plainly() -> None:
    assert [kwh(Decimal(10000)), kwh(Decimal("0.000")), kwh(1), plain(Decimal("1240.000"))] == [
        "10",
        "0",
        "0.001",
        "1240",
    ]


def test_sums_from_the_database_count_like_intervals() -> None:
    t = local_midnight(date(2026, 10, 25), BERLIN)
    sums = [
        IntervalSums(0, {"import_energy_wh": Decimal("1000.5")}, 100, 3),
        IntervalSums(1, {"import_energy_wh": Decimal("1"), "export_energy_wh": Decimal(2)}, 96, 0),
    ]
    days = bucketise(Resolution.DAY, date(2026, 10, 25), date(2026, 10, 27), BERLIN, sums=sums)
    assert [(b.start, b.quarter_hours, b.substitute_quarter_hours) for b in days] == [
        (t, 100, 3),
        (t + timedelta(hours=25), 96, 0),
    ]
    assert days[0].metered_wh == {"import_energy_kwh": Decimal("1000.5")}


def test_csv_has_a_row_per_bucket_units_in_the_header_and_blanks_where_not_settled() -> None:
    d1 = local_midnight(date(2026, 10, 25), BERLIN)  # 100 quarter-hours
    d2 = local_midnight(date(2026, 10, 26), BERLIN)
    intervals = [
        IntervalValue("import_energy_wh", d1 + k * QH, Decimal("12.5"), Quality.GOOD)
        for k in range(100)
    ]
    settled = Statement(
        "a",
        Decimal(1250),
        Decimal(0),
        Decimal(400),
        Decimal(0),
        Decimal(850),
        Decimal(0),
        Decimal("0.3349"),  # an exact amount: shown to the cent
        Decimal("152.0"),
    )
    buckets = bucketise(
        Resolution.DAY,
        date(2026, 10, 25),
        date(2026, 10, 27),
        BERLIN,
        intervals,
        [SettledPeriod(d1, d2, settled)],
    )
    rows = list(csv.reader(io.StringIO(balances_csv(buckets))))
    assert rows[0] == [
        "start",
        "end",
        "quarter_hours",
        "substitute_quarter_hours",
        "import_energy_kwh",
        "consumption_kwh",
        "generation_kwh",
        "shared_received_kwh",
        "shared_delivered_kwh",
        "residual_kwh",
        "surplus_kwh",
        "amount_eur",
        "co2_avoided_g",
    ]
    assert rows[1] == [
        "2026-10-24T22:00:00+00:00",
        "2026-10-25T23:00:00+00:00",
        "100",
        "0",
        "1.25",
        "1.25",
        "0",
        "0.4",
        "0",
        "0.85",
        "0",
        "0.33",
        "152",
    ]
    assert rows[2][:5] == ["2026-10-25T23:00:00+00:00", "2026-10-26T23:00:00+00:00", "0", "0", ""]
    assert rows[2][5:] == [""] * 8
