"""Quarter-hour energy from register readings: exact, monotone, with quality flags.

1. **A plausible register.** Readings are put in time order (equal or decreasing instants are
   an error) and screened by :func:`vpp.metering.plausibility.screen_register`: a reading
   the register cannot have shown (it fell with no meter exchange recorded and not at its
   wrap, or it grew faster than the device's rating allows) is left out — it bills nothing,
   and the readings around it meter the time. A counter that goes down is **never** taken
   as a reset that bills the whole register again. The rest becomes a cumulative energy
   ``E(t_k)`` since the first reading, segment by segment:

   * the register grew: the difference;
   * a :class:`MeterExchange` lies in the segment (``t_{k−1} ≤ ts < t_k``): the rest of the old
     meter plus the start of the new one, ``(old_final − v_{k−1}) + (v_k − new_initial)``;
   * the register fell and ``rollover_wh`` is set: it wrapped, ``v_k + rollover − v_{k−1}``.

2. **Quarter-hour boundaries.** ``E`` at a boundary is the reading there, or the linear
   interpolation between the readings either side, rounded *down* to whole Wh in integer
   arithmetic on microseconds. Rounding the cumulative value (not the interval) keeps every
   interval ``≥ 0`` and makes the intervals sum exactly to the register's total growth.

3. **Quality.** An interval is L1 (real) when both of its boundaries are readings or lie in a
   segment no longer than ``max_gap_s`` between good readings; it is L2 (substitute) when a
   boundary had to be interpolated across a longer gap (missing or refused readings), or a
   reading used is itself a substitute. Only intervals whose two boundaries lie inside the
   span of the readings are produced; nothing is extrapolated. Quarter-hours outside that
   span get L3 estimates only when asked, by :func:`fill_missing`.

When late readings fill a gap, computing the intervals again turns L2 into L1 and may move Wh
between intervals; the store keeps such a restatement as a new version of each interval.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kernel.quarterhours import (
    QH_S,
    TimeGridError,
    epoch_us,
    qh_index,
    qh_start,
    require_qh_boundary,
    require_utc,
)
from vpp.metering.plausibility import CounterRules, counter_step, screen_register
from vpp.metering.quality import IntervalQuality
from vpp.metering.registers import (
    MeterExchange,
    MeteringInputError,
    ReadingQuality,
    RegisterReading,
)

_QH_US = QH_S * 1_000_000


@dataclass(frozen=True, slots=True)
class MeteredInterval:
    """Energy of one register in one quarter-hour (whole Wh) with its quality."""

    qh_start: datetime
    energy_wh: int
    quality: IntervalQuality


def _clean(meter_id: str, readings: Iterable[RegisterReading]) -> list[RegisterReading]:
    out: list[RegisterReading] = []
    for r in readings:
        if r.quality is ReadingQuality.UNAVAILABLE:
            continue
        try:
            require_utc(r.ts, "reading timestamp")
        except TimeGridError as exc:
            raise MeteringInputError(str(exc), meter_id=meter_id, ts=r.ts, field="ts") from exc
        if not isinstance(r.value_wh, int) or isinstance(r.value_wh, bool):
            raise MeteringInputError(
                f"register value must be whole Wh (int), got {r.value_wh!r}",
                meter_id=meter_id,
                ts=r.ts,
                field="value_wh",
            )
        if r.value_wh < 0:
            raise MeteringInputError(
                f"negative register value {r.value_wh} Wh",
                meter_id=meter_id,
                ts=r.ts,
                field="value_wh",
            )
        if out and r.ts <= out[-1].ts:
            reason = "duplicated" if r.ts == out[-1].ts else "out of order"
            raise MeteringInputError(
                f"reading {reason} (previous at {out[-1].ts.isoformat()})",
                meter_id=meter_id,
                ts=r.ts,
                field="ts",
            )
        out.append(r)
    return out


def _plausible(
    meter_id: str, readings: list[RegisterReading], rules: CounterRules
) -> list[RegisterReading]:
    """The readings the plausibility screen keeps; an exchange they contradict raises."""
    for ex in rules.exchanges:
        try:
            require_utc(ex.ts, "exchange timestamp")
        except TimeGridError as exc:
            raise MeteringInputError(str(exc), meter_id=meter_id, field="exchanges") from exc
    kept, refused = screen_register(readings, rules)
    for r in refused:
        if r.step.exchange is not None:
            raise MeteringInputError(
                f"the recorded exchange contradicts the readings: {r.step.detail}",
                meter_id=meter_id,
                ts=r.step.exchange.ts,
                field="exchanges",
            )
    return kept


def register_intervals(
    meter_id: str,
    readings: Iterable[RegisterReading],
    *,
    exchanges: Sequence[MeterExchange] = (),
    rollover_wh: float | None = None,
    max_power_w: float | None = None,
    max_gap_s: int = 300,
) -> tuple[MeteredInterval, ...]:
    """Quarter-hour energies of one register (see module doc); sorted by quarter-hour.

    Readings the plausibility screen refuses are left out (call
    :func:`~vpp.metering.plausibility.screen_register` with the same rules to learn which).
    A recorded exchange that the readings contradict raises :class:`MeteringInputError`
    naming ``exchanges``: the record is wrong, not the meter."""
    rules = CounterRules(max_power_w, rollover_wh, tuple(exchanges))
    rs = _plausible(meter_id, _clean(meter_id, readings), rules)
    if len(rs) < 2:
        return ()
    times = [epoch_us(r.ts) for r in rs]
    cum = [0]
    doubtful = [False]  # doubtful[k]: segment k−1 → k is not real (long gap, substitute reading)
    for k in range(1, len(rs)):
        step = counter_step(rs[k - 1].ts, rs[k - 1].value_wh, rs[k].ts, rs[k].value_wh, rules)
        cum.append(cum[-1] + int(step.energy_wh))
        substitute = ReadingQuality.SUBSTITUTE in (rs[k - 1].quality, rs[k].quality)
        long_gap = times[k] - times[k - 1] > max_gap_s * 1_000_000
        doubtful.append(substitute or long_gap)
    first_b = -(-times[0] // _QH_US)
    last_b = times[-1] // _QH_US
    values: list[int] = []
    real: list[bool] = []
    for b in range(first_b, last_b + 1):
        t = b * _QH_US
        k = bisect.bisect_left(times, t)
        if times[k] == t:
            values.append(cum[k])
            exact_ok = rs[k].quality is ReadingQuality.GOOD
            real.append(exact_ok)
            continue
        span = times[k] - times[k - 1]
        values.append(cum[k - 1] + (cum[k] - cum[k - 1]) * (t - times[k - 1]) // span)
        real.append(not doubtful[k])
    # segments touched by each interval: any doubtful one makes it a substitute
    out: list[MeteredInterval] = []
    for i in range(len(values) - 1):
        lo_t, hi_t = (first_b + i) * _QH_US, (first_b + i + 1) * _QH_US
        k_lo = bisect.bisect_right(times, lo_t)
        k_hi = bisect.bisect_left(times, hi_t)
        touched = any(doubtful[k] for k in range(k_lo, k_hi + 1))
        good = real[i] and real[i + 1] and not touched
        out.append(
            MeteredInterval(
                qh_start=qh_start(first_b + i),
                energy_wh=values[i + 1] - values[i],
                quality=IntervalQuality.L1 if good else IntervalQuality.L2,
            )
        )
    return tuple(out)


#: How many weeks back :func:`fill_missing` looks for a comparable quarter-hour.
FILL_WEEKS_BACK = 4


def fill_missing(
    meter_id: str, intervals: Iterable[MeteredInterval], start: datetime, end: datetime
) -> tuple[MeteredInterval, ...]:
    """Complete ``[start, end)`` with L3 estimates where no value exists (no reading either side).

    Interpolation needs a reading on both sides; when a meter stays silent to the end of a
    period (or before its first reading) the quarter-hours get an *estimated* substitute (L3):
    the value of the same UTC quarter-hour one week earlier — the same weekday and local time,
    except across a clock change — else two, three or :data:`FILL_WEEKS_BACK` weeks earlier,
    else 0 Wh. Existing values (L1, L2) are kept as they are; estimates are never used to
    estimate further quarter-hours.
    """
    lo = _qh_index_of(meter_id, start)
    hi = _qh_index_of(meter_id, end)
    known = {_qh_index_of(meter_id, iv.qh_start): iv for iv in intervals}
    week = 7 * 96
    out: list[MeteredInterval] = []
    for index in range(lo, hi):
        iv = known.get(index)
        if iv is None:
            estimate = next(
                (
                    known[index - k * week].energy_wh
                    for k in range(1, FILL_WEEKS_BACK + 1)
                    if index - k * week in known
                ),
                0,
            )
            iv = MeteredInterval(qh_start(index), estimate, IntervalQuality.L3)
        out.append(iv)
    return tuple(out)


def _qh_index_of(meter_id: str, ts: datetime) -> int:
    try:
        return qh_index(require_qh_boundary(ts, "quarter-hour"))
    except TimeGridError as exc:
        raise MeteringInputError(str(exc), meter_id=meter_id, ts=ts, field="qh_start") from exc
