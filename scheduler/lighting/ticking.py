"""One decision tick of the service as a plain function, so it can run in a worker thread.

:func:`run_tick` takes a snapshot of the service's state (:class:`TickInput`; every mapping in
it is a copy or is never mutated by the event loop) and returns the tick, the commands to send
and the decisions as fresh dicts the service then owns. :func:`carry_over` merges presence
holds that detections set on the event loop while the tick ran.
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


def carry_over(
    ticked: Mapping[str, PresenceHold],
    before: Mapping[str, PresenceHold],
    now_holds: Mapping[str, PresenceHold],
) -> dict[str, PresenceHold]:
    """The tick's holds plus those that detections added or extended while it ran
    (``now_holds`` differs from ``before``, the holds the tick started from)."""
    merged = dict(ticked)
    if now_holds is before:
        return merged
    for lid, hold in now_holds.items():
        if before.get(lid) is not hold:
            merged[lid] = hold
    return merged
