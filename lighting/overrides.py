"""Operator overrides for one luminaire, one segment or everything, with start and expiry.

Precedence: a luminaire override beats a segment override, which beats a site-wide one;
within one scope the override that started last wins (ties: the larger id). An override sets
the level outright (also by day, e.g. for a maintenance test); once expired the program
resumes by itself, since the tick simply stops seeing it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lighting.errors import LightingInputError, check_level_pct


class Scope(enum.StrEnum):
    LUMINAIRE = "luminaire"
    SEGMENT = "segment"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Override:
    """Level ``level_pct`` over ``ramp_s`` from ``starts_at`` until ``expires_at`` (UTC)."""

    override_id: str
    scope: Scope
    target: str | None
    level_pct: float
    starts_at: datetime
    expires_at: datetime
    ramp_s: float = 2.0
    note: str = ""

    def __post_init__(self) -> None:
        where = f"override {self.override_id!r}"
        check_level_pct(f"{where}.level_pct", self.level_pct)
        if self.expires_at <= self.starts_at:
            raise LightingInputError(f"{where}.expires_at", "must be after starts_at")
        if (self.scope is Scope.ALL) != (self.target is None):
            raise LightingInputError(
                f"{where}.target", "needed for a luminaire or segment override, not for 'all'"
            )
        if not self.ramp_s >= 0:
            raise LightingInputError(f"{where}.ramp_s", "must not be negative")


@dataclass(frozen=True, slots=True)
class ActiveOverrides:
    """The overrides in force at one instant, ready for lookups by the tick."""

    everything: Override | None = None
    by_segment: dict[str, Override] = field(default_factory=dict)
    by_luminaire: dict[str, Override] = field(default_factory=dict)

    def for_luminaire(self, luminaire_id: str, segment_id: str) -> Override | None:
        return (
            self.by_luminaire.get(luminaire_id)
            or self.by_segment.get(segment_id)
            or self.everything
        )


def _newer(a: Override | None, b: Override) -> Override:
    if a is None:
        return b
    return b if (b.starts_at, b.override_id) > (a.starts_at, a.override_id) else a


def active_overrides(overrides: Iterable[Override], now: datetime) -> ActiveOverrides:
    """Overrides with ``starts_at <= now < expires_at``, the winner per target."""
    everything: Override | None = None
    by_segment: dict[str, Override] = {}
    by_luminaire: dict[str, Override] = {}
    for ov in overrides:
        if not ov.starts_at <= now < ov.expires_at:
            continue
        if ov.scope is Scope.ALL:
            everything = _newer(everything, ov)
        elif ov.scope is Scope.SEGMENT:
            assert ov.target is not None
            by_segment[ov.target] = _newer(by_segment.get(ov.target), ov)
        else:
            assert ov.target is not None
            by_luminaire[ov.target] = _newer(by_luminaire.get(ov.target), ov)
    return ActiveOverrides(everything, by_segment, by_luminaire)
