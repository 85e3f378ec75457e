"""Is a register's step plausible? Counters only grow, and no faster than the device's rating.

A register reading is judged against the one before it, by what the register did between
the two (:func:`counter_step`):

* it grew: plausible while the growth implies no more power than ``max_power_w`` (plus
  :data:`RATING_MARGIN`, and :data:`RESOLUTION_WH` for registers that count in coarse steps);
  else :attr:`CounterFault.ABOVE_RATING`;
* one or more recorded :class:`~vpp.metering.registers.MeterExchange` lie between them
  (``t_prev ≤ exchange < t``): the rest of the old meter plus the new meter's growth, under
  the same bound; an old reading above the recorded final value, or a new one below the
  recorded start, is :attr:`CounterFault.DECREASE` and names the exchange;
* it fell by at most :data:`TOLERANCE_WH`: no growth (a float register's last digit);
* it fell and the register wraps at ``rollover_wh`` (its size): the wrap,
  ``v + rollover − v_prev``, under the same bound — so a fall that is not at the register's
  top implies an absurd power and is refused;
* it fell otherwise: :attr:`CounterFault.DECREASE`. **Never a reset** that bills the whole
  register again: a genuine reset is a meter exchange, and is recorded as one.

:func:`screen_register` applies this along a series: each reading is judged against the last
one kept, so a single implausible value (a spoofed jump) is refused and the genuine readings
after it still meter. Nothing here raises for a fault: the caller quarantines or ignores.
Energies are in Wh, powers in W, instants aware UTC ``datetime``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from vpp.metering.registers import MeterExchange, RegisterReading

#: Growth may exceed ``rating × time`` by this fraction (the rating is nominal; meters and
#: inverters run a little above it).
RATING_MARGIN = 0.1
#: ... and by this much, whatever the time: a register counting in 0.01 kWh steps (an SDM630)
#: may move one step between two readings a fraction of a second apart, in Wh.
RESOLUTION_WH = 10.0
#: A fall of at most this much is no growth rather than a fault (a float register's jitter), Wh.
TOLERANCE_WH = 1.0


class CounterFault(enum.StrEnum):
    """Why a register reading is implausible (the quarantine's reasons)."""

    DECREASE = "counter_decrease"
    ABOVE_RATING = "power_above_rating"


@dataclass(frozen=True, slots=True)
class CounterRules:
    """What one register may do between two readings.

    ``max_power_w``: the device's rating (None: growth is not bounded). ``rollover_wh``: the
    register's size; it counts ``0 … rollover_wh − 1`` and then starts at 0 again (None: it
    does not wrap). ``exchanges``: the recorded meter exchanges of this register."""

    max_power_w: float | None = None
    rollover_wh: float | None = None
    exchanges: tuple[MeterExchange, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """The growth between two readings in Wh, or why the second one is implausible.

    ``level_wh`` is the register value the next step starts from: the reading's value, or
    the previous value when the reading fell within :data:`TOLERANCE_WH`. ``exchange`` names
    the recorded exchange a fault contradicts."""

    energy_wh: float
    level_wh: float
    fault: CounterFault | None = None
    detail: str = ""
    exchange: MeterExchange | None = None


def _at(exchange: MeterExchange) -> datetime:
    return exchange.ts


def _limit_wh(rules: CounterRules, dt_s: float) -> float | None:
    if rules.max_power_w is None:
        return None
    return rules.max_power_w * max(dt_s, 0.0) / 3600.0 * (1 + RATING_MARGIN) + RESOLUTION_WH


def counter_step(
    prev_ts: datetime, prev_wh: float, ts: datetime, value_wh: float, rules: CounterRules
) -> Step:
    """Judge the register value ``value_wh`` at ``ts`` against ``prev_wh`` at ``prev_ts``
    (``prev_ts ≤ ts``); see the module doc."""
    if rules.exchanges:
        between = sorted((e for e in rules.exchanges if prev_ts <= e.ts < ts), key=_at)
        if between:
            return _across_exchanges(prev_wh, ts, value_wh, between, rules, prev_ts)
    if value_wh >= prev_wh:
        energy = value_wh - prev_wh
        wrapped = False
    elif prev_wh - value_wh <= TOLERANCE_WH:
        return Step(0.0, prev_wh)
    elif rules.rollover_wh is not None and prev_wh < rules.rollover_wh:
        energy = value_wh + rules.rollover_wh - prev_wh
        wrapped = True
    else:
        return Step(
            0.0,
            prev_wh,
            CounterFault.DECREASE,
            f"the register fell from {prev_wh:g} Wh to {value_wh:g} Wh with no meter exchange "
            "recorded" + ("" if rules.rollover_wh is None else " and not at its wrap"),
        )
    return _bounded(energy, value_wh, prev_wh, (ts - prev_ts).total_seconds(), rules, wrapped)


def _bounded(
    energy: float, value_wh: float, prev_wh: float, dt_s: float, rules: CounterRules, wrapped: bool
) -> Step:
    limit = _limit_wh(rules, dt_s)
    if limit is None or energy <= limit:
        return Step(energy, value_wh)
    assert rules.max_power_w is not None
    how = f"wrapped at {rules.rollover_wh:g} Wh from {prev_wh:g} Wh" if wrapped else "grew"
    fault = CounterFault.DECREASE if wrapped else CounterFault.ABOVE_RATING
    return Step(
        0.0,
        prev_wh,
        fault,
        f"the register {how} to {value_wh:g} Wh: {energy:g} Wh in {dt_s:g} s, more than the "
        f"rating of {rules.max_power_w:g} W allows ({limit:.0f} Wh)",
    )


def _across_exchanges(
    prev_wh: float,
    ts: datetime,
    value_wh: float,
    between: Sequence[MeterExchange],
    rules: CounterRules,
    prev_ts: datetime,
) -> Step:
    energy = 0.0
    level = prev_wh
    for ex in between:
        if ex.old_final_wh < level:
            return _contradiction(ex, level, prev_wh, f"above its recorded final {ex.old_final_wh}")
        energy += ex.old_final_wh - level
        level = ex.new_initial_wh
    if value_wh < level:
        return _contradiction(between[-1], value_wh, prev_wh, f"below its recorded start {level}")
    energy += value_wh - level
    return _bounded(energy, value_wh, prev_wh, (ts - prev_ts).total_seconds(), rules, False)


def _contradiction(ex: MeterExchange, value_wh: float, prev_wh: float, what: str) -> Step:
    return Step(
        0.0,
        prev_wh,
        CounterFault.DECREASE,
        f"a reading of {value_wh:g} Wh is {what} Wh (meter exchange at {ex.ts.isoformat()})",
        ex,
    )


@dataclass(frozen=True, slots=True)
class Refused:
    """A reading :func:`screen_register` kept out, with its step."""

    reading: RegisterReading
    step: Step


def screen_register(
    readings: Iterable[RegisterReading], rules: CounterRules
) -> tuple[list[RegisterReading], list[Refused]]:
    """The readings (in time order) that make a plausible register, and those refused.

    Each reading is judged against the last one kept. A kept reading that fell within
    :data:`TOLERANCE_WH` is kept at the previous value, so the kept series never falls except
    across a recorded exchange or a wrap."""
    kept: list[RegisterReading] = []
    refused: list[Refused] = []
    level = 0.0
    for r in readings:
        if not kept:
            kept.append(r)
            level = r.value_wh
            continue
        step = counter_step(kept[-1].ts, level, r.ts, r.value_wh, rules)
        if step.fault is not None:
            refused.append(Refused(r, step))
            continue
        level = step.level_wh
        kept.append(r if step.level_wh == r.value_wh else _at_level(r, step.level_wh))
    return kept, refused


def _at_level(r: RegisterReading, level_wh: float) -> RegisterReading:
    return RegisterReading(r.ts, int(level_wh), r.quality)
