"""One decision tick of the service as a plain function of a snapshot of its state.

:func:`run_tick` takes :class:`TickInput` and returns the tick, the commands for the changed
levels and the decisions as fresh dicts that the service then owns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from lighting.overrides import Override
from lighting.presence import LuminaireCommand, PresenceHold
from lighting.program import ResolvedNight
from lighting.site import LightingIndex
from lighting.tick import LuminaireDecision, Tick, changed_commands, decide_tick
from lighting.traffic import TrafficSample, TrafficState


@dataclass(frozen=True, slots=True)
class TickInput:
    index: LightingIndex
    nights: Mapping[str, ResolvedNight]
    traffic: Mapping[str, TrafficState]
    samples: Mapping[str, TrafficSample]
    holds: Mapping[str, PresenceHold]
    overrides: tuple[Override, ...]
    now: datetime
    #: What the nodes were last told (empty: send every level).
    published: Mapping[str, LuminaireDecision]
    command_expiry_s: float


@dataclass(frozen=True, slots=True)
class TickResult:
    tick: Tick
    commands: tuple[LuminaireCommand, ...]
    decisions: dict[str, LuminaireDecision]
    published: dict[str, LuminaireDecision]


def run_tick(inp: TickInput) -> TickResult:
    """Decide every luminaire at ``inp.now`` and the commands for the changed levels."""
    tick = decide_tick(
        inp.index, inp.nights, inp.traffic, inp.samples, inp.holds, inp.overrides, inp.now
    )
    commands = changed_commands(inp.published, tick, inp.command_expiry_s)
    return TickResult(tick, commands, tick.decisions, dict(tick.decisions))


def split_index(index: LightingIndex, luminaires_per_part: int = 1000) -> tuple[LightingIndex, ...]:
    """The index cut into parts of whole segments with about ``luminaires_per_part``
    luminaires each (luminaires, streets and sensors stay whole, so corridors and holds
    resolve as before), for a tick that yields to the event loop between parts."""
    groups: list[list[str]] = []
    current: list[str] = []
    count = 0
    for sid in index.segments:
        current.append(sid)
        count += len(index.by_segment[sid])
        if count >= luminaires_per_part:
            groups.append(current)
            current, count = [], 0
    if current or not groups:
        groups.append(current)
    return tuple(
        LightingIndex(
            {sid: index.segments[sid] for sid in group},
            index.luminaires,
            {sid: index.by_segment[sid] for sid in group},
            index.streets,
            index.sensors,
        )
        for group in groups
    )
