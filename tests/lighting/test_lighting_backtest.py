"""Backtest of a program with traffic adaptation against recorded traffic (CSV)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest

from lighting.backtest import TrafficRecord, backtest, parse_traffic_csv
from lighting.errors import LightingInputError
from lighting.examples import PROGRAMS, example_grid

INDEX = example_grid(2, 10)
SEG = INDEX.segments["seg-0"]
LUMS = INDEX.by_segment["seg-0"]
FIRST, LAST = date(2026, 1, 12), date(2026, 1, 18)


def csv_text(count_by_hour: dict[int, int], other_segment: bool = False) -> str:
    """10-minute counts for a week of nights, count by UTC hour (default 100 = busy)."""
    rows = ["ts,segment_id,count,lane"]
    t = datetime(2026, 1, 12, 11, 0, tzinfo=UTC)
    while t < datetime(2026, 1, 19, 12, 0, tzinfo=UTC):
        rows.append(f"{t.isoformat()},seg-0,{count_by_hour.get(t.hour, 100)},1")
        if other_segment:
            rows.append(f"{t.isoformat()},seg-1,0,1")
        t += timedelta(minutes=10)
    return "\n".join(rows) + "\n"


def test_parse_from_text_io_and_from_lines() -> None:
    text = "ts,segment_id,count\n2026-01-14T22:00:00+01:00,seg-0,12\n2026-01-14T21:10:00Z,seg-0,\n"
    from_io = parse_traffic_csv(io.StringIO(text))
    from_lines = parse_traffic_csv(text.splitlines())
    assert from_io == from_lines
    assert from_io == [
        TrafficRecord(datetime(2026, 1, 14, 21, 0, tzinfo=UTC), "seg-0", 12),
        TrafficRecord(datetime(2026, 1, 14, 21, 10, tzinfo=UTC), "seg-0", None),
    ]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("ts,segment\n", "traffic.csv line 1"),
        ("ts,segment_id,count\n2026-01-14T22:00:00,seg-0,1\n", "traffic.csv line 2.ts"),
        ("ts,segment_id,count\nyesterday,seg-0,1\n", "traffic.csv line 2.ts"),
        (
            "ts,segment_id,count\n2026-01-14T22:00:00Z,seg-0,1\n2026-01-14T22:10Z,seg-0,x\n",
            "traffic.csv line 3.count",
        ),
        ("ts,segment_id,count\n2026-01-14T22:00:00Z,,1\n", "traffic.csv line 2.segment_id"),
    ],
)
def test_bad_rows_name_line_and_column(text: str, field: str) -> None:
    with pytest.raises(LightingInputError) as err:
        parse_traffic_csv(io.StringIO(text))
    assert err.value.field == field


def test_without_traffic_data_the_backtest_equals_the_program() -> None:
    result = backtest(SEG, LUMS, PROGRAMS, [], FIRST, LAST)
    assert len(result.nights) == 7
    for night in result.nights:
        assert night.energy.energy_wh == night.program_only_wh
        assert night.lowered_h == 0.0


def test_busy_traffic_keeps_the_design_class() -> None:
    records = parse_traffic_csv(io.StringIO(csv_text({})))
    result = backtest(SEG, LUMS, PROGRAMS, records, FIRST, LAST)
    assert result.energy_wh == result.program_only_wh
    assert all(n.lowered_h == 0.0 for n in result.nights)


def test_quiet_nights_save_more_than_the_program_alone() -> None:
    quiet = {h: 3 for h in (22, 23, 0, 1, 2, 3, 4)}  # 18 veh/h from 23:00 to 06:00 CET
    seen: list[tuple[int, int]] = []
    records = parse_traffic_csv(io.StringIO(csv_text(quiet, other_segment=True)))
    result = backtest(
        SEG, LUMS, PROGRAMS, records, FIRST, LAST, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(k, 7) for k in range(1, 8)]
    assert result.energy_wh < result.program_only_wh < result.baseline_wh
    for night in result.nights:
        # lowered from the 2nd quiet sample (≥ 10 min dwell) until the first busy one
        assert 6.0 <= night.lowered_h <= 7.0
    program_savings_pct = 100.0 * (1 - result.program_only_wh / result.baseline_wh)
    assert result.savings_pct > program_savings_pct + 5.0


def test_a_silent_sensor_in_the_recording_falls_back_to_design() -> None:
    quiet = {h: 3 for h in range(24)}
    records = [
        r
        for r in parse_traffic_csv(io.StringIO(csv_text(quiet)))
        if not (r.at.date() == date(2026, 1, 14) and 20 <= r.at.hour < 23)
    ]
    result = backtest(SEG, LUMS, PROGRAMS, records, FIRST, LAST)
    lowered = {n.energy.night: n.lowered_h for n in result.nights}
    assert lowered[date(2026, 1, 14)] < lowered[date(2026, 1, 13)] - 2.0


def test_bad_range_is_refused() -> None:
    with pytest.raises(LightingInputError, match="last_night"):
        backtest(SEG, LUMS, PROGRAMS, [], LAST, FIRST)
