"""The demo's clock slows down when the cycles overrun and comes back when they do not."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.demo.pace import Pace
from kernel.clock import SimClock


@dataclass
class Cycles:
    """What the pace reads of the controller: real cycle durations, the poll interval."""

    poll_interval_s: float = 60.0
    cycle_real_s: collections.deque[float] = field(default_factory=collections.deque)


@dataclass
class Timer:
    missed_runs: dict[str, int] = field(default_factory=dict)


def pace_at(speed: float) -> tuple[Pace, Cycles, Timer, SimClock]:
    clock = SimClock(datetime(2026, 11, 25, 5, 30, tzinfo=UTC), speed)
    cycles, timer = Cycles(), Timer()
    pace = Pace(clock, cycles, timer, 144.0, min_speed=2.0)  # type: ignore[arg-type]
    return pace, cycles, timer, clock


def test_overrunning_cycles_slow_the_clock_and_say_why() -> None:
    pace, cycles, _, clock = pace_at(144.0)
    # a cycle has 60 / 144 ≈ 0.42 s; these take 0.6 to 0.8 s
    cycles.cycle_real_s.extend([0.6, 0.7, 0.8, 0.7])
    pace.check()
    assert clock.speed < 144.0 * 0.8
    assert pace.slowed is not None
    assert "the machine is busy" in pace.slowed
    assert "%" in pace.slowed


def test_skipped_cycles_slow_the_clock_too() -> None:
    pace, _, timer, clock = pace_at(144.0)
    timer.missed_runs["poll"] = 3
    pace.check()
    assert clock.speed == 72.0
    assert pace.slowed == "the machine is busy (3 cycle(s) skipped)"


def test_the_clock_never_goes_below_its_floor() -> None:
    pace, cycles, _, clock = pace_at(3.0)
    cycles.cycle_real_s.extend([100.0] * 5)
    pace.check()
    assert clock.speed == 2.0


def test_calm_cycles_bring_the_speed_back_step_by_step() -> None:
    pace, cycles, _, clock = pace_at(100.0)
    pace.slowed = "the machine is busy (x)"
    for _ in range(20):
        cycles.cycle_real_s.append(0.01)  # far below 30 % of 0.6 s
        pace.check()
    assert clock.speed == 144.0
    assert pace.slowed is None


def test_a_load_between_the_marks_changes_nothing() -> None:
    pace, cycles, _, clock = pace_at(144.0)
    cycles.cycle_real_s.extend([0.2, 0.2])  # ~48 % of 0.42 s
    pace.check()
    assert clock.speed == 144.0
    assert pace.slowed is None
