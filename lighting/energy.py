"""Power and energy: a driver curve maps a level to power, curves over time integrate to Wh.

Power of a luminaire = its standby power (the driver and the control node, always drawn)
+ rated power (W at 100 %) × the driver curve's power fraction at the level. Drivers are
less efficient when dimmed, so the default curve lies above the straight line at low levels;
a site gives the measured curve of its drivers where it has one.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from lighting.errors import LightingInputError


@dataclass(frozen=True, slots=True)
class DriverCurve:
    """Points (level %, fraction of rated power), increasing in level, from 0 % to 100 %."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        levels = [p[0] for p in self.points]
        if len(levels) < 2 or levels[0] != 0.0 or levels[-1] != 100.0:
            raise LightingInputError("driver_curve.points", "must run from 0 % to 100 %")
        if any(b <= a for a, b in itertools.pairwise(levels)):
            raise LightingInputError("driver_curve.points", "levels must increase")
        if any(not 0.0 <= f <= 2.0 for _, f in self.points):
            raise LightingInputError("driver_curve.points", "fractions must lie in [0, 2]")


DEFAULT_CURVE = DriverCurve(
    ((0.0, 0.0), (10.0, 0.13), (30.0, 0.33), (50.0, 0.53), (70.0, 0.72), (100.0, 1.0))
)


def power_fraction(curve: DriverCurve, level_pct: float) -> float:
    """Fraction of rated power at ``level_pct`` (linear between the curve's points)."""
    pts = curve.points
    if level_pct <= 0.0:
        return 0.0
    if level_pct >= 100.0:
        return pts[-1][1]
    i = bisect_right([p[0] for p in pts], level_pct)
    (l0, f0), (l1, f1) = pts[i - 1], pts[i]
    return f0 + (f1 - f0) * (level_pct - l0) / (l1 - l0)


@dataclass(frozen=True, slots=True)
class Load:
    """A group of luminaires seen as one load: per driver curve the summed rated power in W,
    and the summed standby power in W."""

    rated_w_by_curve: tuple[tuple[DriverCurve, float], ...]
    standby_w: float
    count: int

    def power_w(self, level_pct: float) -> float:
        """Power in W of the whole group at ``level_pct``."""
        if level_pct <= 0.0:
            return self.standby_w
        return self.standby_w + sum(
            rated * power_fraction(c, level_pct) for c, rated in self.rated_w_by_curve
        )

    def knots(self) -> list[float]:
        """Levels where the power curve bends."""
        return sorted({p[0] for c, _ in self.rated_w_by_curve for p in c.points})


class _HasPower(Protocol):
    @property
    def rated_power_w(self) -> float: ...
    @property
    def standby_power_w(self) -> float: ...
    @property
    def curve(self) -> DriverCurve: ...


def luminaire_power_w(lum: _HasPower, level_pct: float) -> float:
    """Expected power in W of one luminaire at ``level_pct``."""
    return lum.standby_power_w + lum.rated_power_w * power_fraction(lum.curve, level_pct)


def load_of(luminaires: Iterable[_HasPower]) -> Load:
    """Group luminaires (anything with rated_power_w, standby_power_w, curve) into a Load."""
    rated: dict[DriverCurve, float] = {}
    standby = 0.0
    count = 0
    for lum in luminaires:
        rated[lum.curve] = rated.get(lum.curve, 0.0) + lum.rated_power_w
        standby += lum.standby_power_w
        count += 1
    return Load(tuple(rated.items()), standby, count)


Curve = Sequence[tuple[datetime, float]]


def curve_from_commands(
    start: datetime,
    end: datetime,
    commands: Iterable[tuple[datetime, float, float]],
    initial_pct: float = 0.0,
) -> list[tuple[datetime, float]]:
    """Level over [start, end] from time-ordered commands (instant, level %, ramp s).

    A ramp is a straight line from the level in force; a following command cuts it short
    (as on a node, a new command interrupts a running ramp). Breakpoints of a piecewise-linear
    curve are returned; two points at one instant make a jump.
    """
    cmds = [c for c in commands if start <= c[0] < end]
    points: list[tuple[datetime, float]] = [(start, initial_pct)]
    level = initial_pct
    for i, (at, target, ramp_s) in enumerate(cmds):
        points.append((at, level))
        next_at = cmds[i + 1][0] if i + 1 < len(cmds) else end
        if ramp_s <= 0.0:
            level = target
            points.append((at, level))
            continue
        ramp_end = at + timedelta(seconds=ramp_s)
        if ramp_end <= next_at:
            level = target
            points.append((ramp_end, level))
        else:
            done = (next_at - at).total_seconds() / ramp_s
            level = level + (target - level) * done
            points.append((next_at, level))
    points.append((end, level))
    return points


def energy_wh(
    curve: Curve, load: Load, start: datetime | None = None, end: datetime | None = None
) -> float:
    """Energy in Wh that ``load`` uses following ``curve`` between ``start`` and ``end``
    (default: the whole curve). Exact for piecewise-linear driver curves: pieces are split
    where the level crosses a knot of the driver curve."""
    if not curve:
        return 0.0
    lo = start or curve[0][0]
    hi = end or curve[-1][0]
    knots = load.knots()
    total_ws = 0.0
    for (t0, l0), (t1, l1) in itertools.pairwise(curve):
        a, b = max(t0, lo), min(t1, hi)
        if b <= a:
            continue
        span = (t1 - t0).total_seconds()
        la = l0 + (l1 - l0) * (a - t0).total_seconds() / span
        lb = l0 + (l1 - l0) * (b - t0).total_seconds() / span
        dur = (b - a).total_seconds()
        if la == lb:
            total_ws += load.power_w(la) * dur
            continue
        cuts = [0.0]
        low, high = min(la, lb), max(la, lb)
        cuts += sorted((k - la) / (lb - la) for k in knots if low < k < high)
        cuts.append(1.0)
        for u0, u1 in itertools.pairwise(cuts):
            p0 = load.power_w(la + (lb - la) * u0)
            p1 = load.power_w(la + (lb - la) * u1)
            total_ws += (p0 + p1) / 2.0 * (u1 - u0) * dur
    return total_ws / 3600.0


def energy_per_interval(curve: Curve, load: Load, edges: Sequence[datetime]) -> list[float]:
    """Energy in Wh of ``load`` following ``curve`` in each interval ``[edges[i], edges[i+1])``
    (zero where the curve does not reach); one pass instead of one integration per interval."""
    times = [t for t, _ in curve]
    out: list[float] = []
    for a, b in itertools.pairwise(edges):
        if not curve or b <= times[0] or a >= times[-1]:
            out.append(0.0)
            continue
        lo = max(0, bisect_right(times, a) - 1)
        hi = min(len(curve), bisect_left(times, b) + 1)
        out.append(energy_wh(curve[lo:hi], load, max(a, times[0]), min(b, times[-1])))
    return out
