"""Traffic adaptation: lower a segment's lighting class when traffic is light, with hysteresis.

Every threshold is data per segment (:class:`TrafficRule`). The rule follows the published
UNI 11248 example (``docs/domain.md`` §4):

* hourly flow = count in the sample window × (3600 s / window), i.e. a 10-minute count × 6;
* flow below ``fraction`` × capacity allows ``steps`` classes lower (deepest matching band);
* raise at once; lower only after ``low_samples`` consecutive low samples, and only after the
  current class has been held ``min_dwell_s`` seconds;
* a silent sensor (no sample for ``max_silence_s``) or an implausible one (negative count or a
  flow above ``plausible_max_fraction`` × capacity) returns the segment to its design class.

:func:`adapt` is a pure step function: the runtime keeps the :class:`TrafficState` per segment
and feeds it every tick; feeding the same sample twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from lighting.errors import LightingInputError


@dataclass(frozen=True, slots=True)
class TrafficRule:
    """Per-segment thresholds. ``bands`` are (fraction of capacity, class steps down)."""

    segment: str
    capacity_veh_per_h: float
    bands: tuple[tuple[float, int], ...] = ((0.5, 1), (0.25, 2))
    low_samples: int = 2
    min_dwell_s: float = 600.0
    window_s: float = 600.0
    max_silence_s: float = 1500.0
    plausible_max_fraction: float = 3.0

    def __post_init__(self) -> None:
        where = f"segment {self.segment!r}.traffic"
        if not self.capacity_veh_per_h > 0:
            raise LightingInputError(f"{where}.capacity_veh_per_h", "must be above 0")
        for i, (fraction, steps) in enumerate(self.bands):
            if not 0.0 < fraction <= 1.0 or steps < 1:
                raise LightingInputError(
                    f"{where}.bands[{i}]", "need a fraction in (0, 1] and at least 1 step"
                )
        if self.low_samples < 1:
            raise LightingInputError(f"{where}.low_samples", "must be at least 1")
        for name in ("min_dwell_s", "window_s", "max_silence_s", "plausible_max_fraction"):
            if not getattr(self, name) > 0:
                raise LightingInputError(f"{where}.{name}", "must be above 0")


@dataclass(frozen=True, slots=True)
class TrafficSample:
    """A sensor's vehicle count over ``window_s`` ending at ``at`` (UTC); None = no value."""

    at: datetime
    count: int | None


@dataclass(frozen=True, slots=True)
class TrafficState:
    """Hysteresis state of one segment. ``steps`` = classes below design (0 = design);
    ``fallback`` is set while the segment sits at its design class because the sensor is
    silent, implausible or has not sent anything yet; ``cause`` says it in words."""

    steps: int = 0
    since: datetime | None = None
    low_streak: int = 0
    streak_steps: int = 0
    last_sample_at: datetime | None = None
    last_good_at: datetime | None = None
    flow_veh_per_h: float | None = None
    cause: str = "no traffic data yet"
    fallback: bool = True


def flow_veh_per_h(rule: TrafficRule, count: int) -> float:
    """Hourly flow from a window count: 10-minute count × 6 by default."""
    return count * 3600.0 / rule.window_s


def wanted_steps(rule: TrafficRule, flow: float, max_steps: int) -> int:
    """How many classes below design this flow allows (deepest band it falls under)."""
    steps = 0
    for fraction, band_steps in rule.bands:
        if flow < fraction * rule.capacity_veh_per_h:
            steps = max(steps, band_steps)
    return min(steps, max_steps)


def _to_design(state: TrafficState, now: datetime, cause: str) -> TrafficState:
    since = state.since if state.steps == 0 else now
    return replace(
        state, steps=0, since=since, low_streak=0, streak_steps=0, cause=cause, fallback=True
    )


def adapt(
    rule: TrafficRule,
    state: TrafficState,
    sample: TrafficSample | None,
    now: datetime,
    max_steps: int,
) -> TrafficState:
    """The segment's traffic state at ``now`` after seeing ``sample`` (may be an old one).

    ``max_steps`` is how many lower classes the segment permits.
    """
    if state.since is None:
        state = replace(state, since=now)
    fresh = sample is not None and (
        state.last_sample_at is None or sample.at > state.last_sample_at
    )
    if fresh:
        assert sample is not None
        state = replace(state, last_sample_at=sample.at)
        if sample.count is None:
            return _to_design(state, now, "sensor sent no count → design class")
        flow = flow_veh_per_h(rule, sample.count)
        if sample.count < 0 or flow > rule.plausible_max_fraction * rule.capacity_veh_per_h:
            return _to_design(
                replace(state, flow_veh_per_h=None),
                now,
                f"sensor implausible ({sample.count} vehicles in {rule.window_s:.0f} s) "
                "→ design class",
            )
        state = replace(state, last_good_at=sample.at, flow_veh_per_h=flow, fallback=False)
        want = wanted_steps(rule, flow, max_steps)
        if want < state.steps:
            cause = f"traffic {flow:.0f} veh/h → raised at once"
            return replace(state, steps=want, since=now, low_streak=0, streak_steps=0, cause=cause)
        if want == state.steps:
            return replace(state, low_streak=0, streak_steps=0, cause=f"traffic {flow:.0f} veh/h")
        streak = state.low_streak + 1
        streak_steps = want if state.low_streak == 0 else min(state.streak_steps, want)
        state = replace(
            state, low_streak=streak, streak_steps=streak_steps, cause=f"traffic {flow:.0f} veh/h"
        )
    if state.last_good_at is None:
        return _to_design(state, now, "no traffic data yet → design class")
    if (now - state.last_good_at).total_seconds() > rule.max_silence_s:
        return _to_design(state, now, "sensor silent → design class")
    dwell_ok = state.since is not None and (now - state.since).total_seconds() >= rule.min_dwell_s
    if state.low_streak >= rule.low_samples and dwell_ok and state.streak_steps > state.steps:
        flow = state.flow_veh_per_h or 0.0
        return replace(
            state,
            steps=state.streak_steps,
            since=now,
            low_streak=0,
            streak_steps=0,
            cause=f"traffic {flow:.0f} veh/h",
        )
    return state
