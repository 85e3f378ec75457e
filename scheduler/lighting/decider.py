"""The lighting's decider in the cycle: every luminaire's level from the snapshot.

:meth:`LightingDecider.decide` runs the pure core's tick (:func:`lighting.tick.decide_tick`:
program → class adapted to traffic → floor → presence hold → override) over the snapshot's
traffic samples, with the presence holds and overrides in force, and returns
:func:`lighting.tick.level_commands`: a command for each luminaire whose level differs from
its command in force (the snapshot's), or whose command in force is about to expire. The
cycle runs it in a worker thread (a tick of 10,000 luminaires must not hold up the event
loop, where the presence fast path runs), so the decider reads only values that the event
loop replaces whole and never changes in place (the holds, the overrides, the site).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from kernel.commands import Command, CommandKind
from lighting.config import LightingSite
from lighting.overrides import Override
from lighting.presence import PresenceHold
from lighting.program import ResolvedNight
from lighting.schedule import nights_covering
from lighting.tick import LuminaireDecision, SegmentDecision, Tick, decide_tick, level_commands
from lighting.traffic import TrafficState
from scheduler.lighting.config import LightingServiceConfig
from scheduler.snapshot import Snapshot


@dataclass(frozen=True)
class Boost:
    """A presence boost sent by the fast path: the decision it stands for, and when."""

    decision: LuminaireDecision
    at: datetime


class Decisions(Mapping[str, LuminaireDecision]):
    """Each luminaire's current target: the last tick's decision, or a presence boost sent
    after that tick (read-only, no copy of 10,000 decisions per look-up)."""

    def __init__(self, tick: Tick | None, boosts: Mapping[str, Boost]) -> None:
        self._tick = tick
        self._boosts = boosts

    def __getitem__(self, key: str) -> LuminaireDecision:
        boost = self._boosts.get(key)
        tick = self._tick
        if boost is not None and (tick is None or boost.at > tick.at):
            return boost.decision
        if tick is None:
            raise KeyError(key)
        return tick.decisions[key]

    def __iter__(self) -> Iterator[str]:
        tick = self._tick
        seen = set(tick.decisions) if tick is not None else set()
        yield from seen
        yield from (k for k in self._boosts if k not in seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class LightingState:
    """What the decider and the fast path share; every field is replaced whole."""

    site: LightingSite
    holds: Mapping[str, PresenceHold] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    boosts: Mapping[str, Boost] = field(default_factory=dict)


class LightingDecider:
    """Decides every luminaire from a snapshot; holds the traffic state between cycles."""

    name = "lighting"

    def __init__(self, state: LightingState, config: LightingServiceConfig) -> None:
        self.state = state
        self.config = config
        self._nights: dict[str, ResolvedNight] = {}
        self._traffic: dict[str, TrafficState] = {}
        self.tick: Tick | None = None

    @property
    def decisions(self) -> Decisions:
        return Decisions(self.tick, self.state.boosts)

    @property
    def segment_decisions(self) -> Mapping[str, SegmentDecision]:
        return MappingProxyType(self.tick.segments if self.tick is not None else {})

    @property
    def traffic(self) -> Mapping[str, TrafficState]:
        return MappingProxyType(self._traffic)

    @property
    def nights(self) -> Mapping[str, ResolvedNight]:
        return MappingProxyType(self._nights)

    def reset(self) -> None:
        """Forget resolved nights and the traffic of segments that no longer exist."""
        segments = self.state.site.index.segments
        self.tick = None  # its decisions are of the old index: not to be reused
        self._nights = {}
        self._traffic = {k: v for k, v in self._traffic.items() if k in segments}

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        now = snapshot.at
        state = self.state
        index, programs = state.site.index, state.site.programs
        nights = nights_covering(index, programs, now, self._nights)
        overrides = tuple(ov for ov in state.overrides if ov.expires_at > now)
        samples = {k: v for k, v in snapshot.lighting.traffic.items() if k in index.segments}
        tick = decide_tick(
            index, nights, self._traffic, samples, state.holds, overrides, now, self.tick
        )
        self._nights = nights
        self._traffic = tick.traffic
        self.tick = tick
        in_force = snapshot.in_force.get(CommandKind.DIM_LEVEL_PCT, {})
        return level_commands(
            tick.decisions,
            in_force,
            now,
            self.config.command_expiry_s,
            self.config.renew_within_s,
        )


__all__ = ["Boost", "Decisions", "LightingDecider", "LightingState"]
