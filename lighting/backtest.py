"""Backtest: what a program with traffic adaptation would have used against recorded traffic.

The recorded traffic is CSV text with a header and the columns ``ts`` (window end, ISO 8601
with a UTC offset), ``segment_id`` and ``count`` (vehicles in the window; empty = the sensor
sent nothing). Other columns are ignored. The parser takes any iterable of text lines, so a
``TextIO`` works as well as a list of strings; it does no file I/O itself.

The simulation replays each night through the same :func:`lighting.tick.decide_segment` the
live tick uses, at every program step, every recorded sample and every window (so silence is
noticed), and integrates the resulting level curve (ramps included).
"""

from __future__ import annotations

import csv
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from lighting.energy import curve_from_commands, energy_wh, load_of
from lighting.errors import LightingInputError
from lighting.preview import (
    DEFAULT_CO2_G_PER_KWH,
    DUSK_TO_DAWN,
    NightEnergy,
    baseline_wh,
    co2_kg,
)
from lighting.program import Anchor, ResolvedNight, level_curve
from lighting.schedule import Programs, effective_night, resolve_segment_night
from lighting.site import Luminaire, Segment
from lighting.tick import decide_segment
from lighting.traffic import TrafficSample, TrafficState

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TrafficRecord:
    at: datetime
    segment_id: str
    count: int | None


def parse_traffic_csv(lines: Iterable[str], source: str = "traffic.csv") -> list[TrafficRecord]:
    """Parse recorded traffic; an error names the source, the line and the column."""
    reader = csv.DictReader(lines)
    missing = {"ts", "segment_id", "count"} - set(reader.fieldnames or ())
    if missing:
        raise LightingInputError(f"{source} line 1", f"missing column(s) {sorted(missing)}")
    out: list[TrafficRecord] = []
    for row in reader:
        where = f"{source} line {reader.line_num}"
        raw_ts, raw_count = (row.get("ts") or "").strip(), (row.get("count") or "").strip()
        try:
            at = datetime.fromisoformat(raw_ts)
        except ValueError as exc:
            raise LightingInputError(f"{where}.ts", f"not an ISO 8601 time: {raw_ts!r}") from exc
        if at.tzinfo is None:
            raise LightingInputError(f"{where}.ts", f"{raw_ts!r} has no UTC offset")
        count: int | None = None
        if raw_count:
            try:
                count = int(raw_count)
            except ValueError as exc:
                raise LightingInputError(
                    f"{where}.count", f"not a whole number: {raw_count!r}"
                ) from exc
        segment_id = (row.get("segment_id") or "").strip()
        if not segment_id:
            raise LightingInputError(f"{where}.segment_id", "empty")
        out.append(TrafficRecord(at.astimezone(UTC), segment_id, count))
    return out


@dataclass(frozen=True, slots=True)
class BacktestNight:
    """One night: energy with traffic adaptation, with the program alone, and full light."""

    energy: NightEnergy
    program_only_wh: int
    lowered_h: float


@dataclass(frozen=True, slots=True)
class BacktestResult:
    segment_id: str
    nights: tuple[BacktestNight, ...]

    @property
    def energy_wh(self) -> int:
        return sum(n.energy.energy_wh for n in self.nights)

    @property
    def program_only_wh(self) -> int:
        return sum(n.program_only_wh for n in self.nights)

    @property
    def baseline_wh(self) -> int:
        return sum(n.energy.baseline_wh for n in self.nights)

    @property
    def savings_pct(self) -> float:
        base = self.baseline_wh
        return 100.0 * (base - self.energy_wh) / base if base else 0.0


def backtest(
    segment: Segment,
    luminaires: Iterable[Luminaire],
    programs: Programs,
    records: Iterable[TrafficRecord],
    first_night: date,
    last_night: date,
    co2_g_per_kwh: float = DEFAULT_CO2_G_PER_KWH,
    progress: Progress | None = None,
    baseline: tuple[Anchor, Anchor] = DUSK_TO_DAWN,
) -> BacktestResult:
    """Replay ``first_night`` … ``last_night`` (inclusive) of ``segment`` against ``records``
    (rows of other segments are skipped); ``progress(done, total)`` after each night."""
    if last_night < first_night:
        raise LightingInputError("backtest.last_night", "before first_night")
    load = load_of(luminaires)
    mine = sorted((r for r in records if r.segment_id == segment.segment_id), key=lambda r: r.at)
    times = [r.at for r in mine]
    window_s = segment.traffic.window_s if segment.traffic is not None else 3600.0
    total = (last_night - first_night).days + 1
    state: TrafficState | None = None
    out: list[BacktestNight] = []
    for k in range(total):
        resolved = resolve_segment_night(segment, programs, first_night + timedelta(days=k))
        replay = _replay_night(segment, resolved, mine, times, window_s, state)
        state = replay.traffic
        used = energy_wh(curve_from_commands(resolved.start, resolved.end, replay.commands), load)
        program_only = energy_wh(level_curve(effective_night(resolved, segment.classing)), load)
        base = baseline_wh(resolved.anchors, load, baseline)
        energy = NightEnergy(
            resolved.night,
            segment.segment_id,
            resolved.program,
            resolved.rule,
            round(used),
            round(base),
            co2_kg(used, co2_g_per_kwh),
            co2_kg(base - used, co2_g_per_kwh),
        )
        out.append(BacktestNight(energy, round(program_only), replay.lowered_s / 3600.0))
        if progress is not None:
            progress(k + 1, total)
    return BacktestResult(segment.segment_id, tuple(out))


class _Replay(NamedTuple):
    """One night as the tick would have run it: the level commands it issued (instant,
    level %, ramp s), the seconds the segment was lit at a lowered class, and the traffic
    state the next night starts from."""

    commands: list[tuple[datetime, float, float]]
    lowered_s: float
    traffic: TrafficState | None


def _replay_night(
    segment: Segment,
    resolved: ResolvedNight,
    mine: Sequence[TrafficRecord],
    times: Sequence[datetime],
    window_s: float,
    state: TrafficState | None,
) -> _Replay:
    """Decide the segment at every program step, every recorded sample (``mine``, the
    segment's records by time; ``times`` their instants) and every ``window_s`` of the night,
    as the live tick does."""
    lo, hi = bisect_left(times, resolved.start), bisect_left(times, resolved.end)
    events = {s.at for s in resolved.steps}
    events.update(times[lo:hi])
    grid = resolved.start
    while grid < resolved.end:
        events.add(grid)
        grid += timedelta(seconds=window_s)
    commands: list[tuple[datetime, float, float]] = []
    level = 0.0
    lowered_s = 0.0
    prev_t: datetime | None = None
    prev_lowered = False
    for t in sorted(events):
        i = bisect_right(times, t) - 1
        rec = mine[i] if i >= 0 else None
        sample = TrafficSample(rec.at, rec.count) if rec is not None else None
        seg, state = decide_segment(segment, resolved, state, sample, t)
        if prev_t is not None and prev_lowered:
            lowered_s += (t - prev_t).total_seconds()
        prev_t, prev_lowered = (
            t,
            seg.program_pct > 0 and seg.lighting_class != (segment.classing.design_class),
        )
        if seg.level_pct != level:
            commands.append((t, seg.level_pct, seg.ramp_s))
            level = seg.level_pct
    if prev_t is not None and prev_lowered:
        lowered_s += (resolved.end - prev_t).total_seconds()
    return _Replay(commands, lowered_s, state)
