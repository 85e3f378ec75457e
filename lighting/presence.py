"""Presence corridors: a detection raises the luminaires around it, holds, then ramps down.

A detection at a pole of a street boosts the luminaires from ``poles_behind`` poles behind to
``poles_ahead`` poles ahead of it in the direction of travel (both ways when the direction is
unknown), counted in street order, across segment borders. Each boosted luminaire goes to its
own segment's ``boost_pct`` with a fast ``ramp_up_s``, holds until ``hold_s`` after the latest
detection that reached it (overlapping detections extend the hold), then the decision tick
ramps it down over ``ramp_down_s``. Luminaires of segments without a presence rule, off by
day, or under an operator override are not boosted.

:func:`apply_detection` is the low-latency path: it returns the commands to publish at once,
without waiting for the next tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kernel.commands import Command, CommandKind
from lighting.errors import LightingInputError, check_level_pct

if TYPE_CHECKING:
    from lighting.site import LightingIndex
    from lighting.tick import LuminaireDecision


@dataclass(frozen=True, slots=True)
class PresenceRule:
    """Corridor size in poles, boost level in %, hold and ramps in s (per segment)."""

    segment: str
    poles_ahead: int = 3
    poles_behind: int = 1
    boost_pct: float = 100.0
    hold_s: float = 60.0
    ramp_up_s: float = 1.0
    ramp_down_s: float = 30.0

    def __post_init__(self) -> None:
        where = f"segment {self.segment!r}.presence"
        check_level_pct(f"{where}.boost_pct", self.boost_pct)
        for name in ("poles_ahead", "poles_behind", "hold_s", "ramp_up_s", "ramp_down_s"):
            if not getattr(self, name) >= 0:
                raise LightingInputError(f"{where}.{name}", "must not be negative")


@dataclass(frozen=True, slots=True)
class Detection:
    """Something moving at ``pole_index`` of ``street_id`` at ``at`` (UTC).

    ``direction`` is +1 towards higher pole indices, -1 towards lower ones, 0 unknown.
    """

    street_id: str
    pole_index: int
    at: datetime
    direction: int = 0
    sensor_id: str = ""


@dataclass(frozen=True, slots=True)
class PresenceHold:
    """A luminaire boosted to ``boost_pct`` until ``until``, then ramping down."""

    luminaire_id: str
    boost_pct: float
    until: datetime
    ramp_up_s: float
    ramp_down_s: float


PRESENCE_SOURCE = "presence"


def detection_from_sensor(
    index: LightingIndex, sensor_id: str, at: datetime, direction: int = 0
) -> Detection:
    """The detection a presence sensor's uplink stands for (its configured street and pole)."""
    sensor = index.sensors.get(sensor_id)
    if sensor is None:
        raise LightingInputError("detection.sensor_id", f"unknown sensor {sensor_id!r}")
    return Detection(sensor.street_id, sensor.pole_index, at, direction, sensor_id)


def corridor(index: LightingIndex, detection: Detection) -> tuple[str, ...]:
    """Luminaire ids of the corridor around ``detection``, in street order.

    The corridor's size comes from the presence rule of the segment of the luminaire nearest
    to the detection; without a rule there the corridor is empty.
    """
    street = index.streets.get(detection.street_id)
    if street is None:
        raise LightingInputError("detection.street_id", f"unknown street {detection.street_id!r}")
    pos = street.position(detection.pole_index)
    nearest = index.luminaires[street.luminaire_ids[pos]]
    rule = index.segments[nearest.segment_id].presence
    if rule is None:
        return ()
    if detection.direction > 0:
        behind, ahead = rule.poles_behind, rule.poles_ahead
    elif detection.direction < 0:
        behind, ahead = rule.poles_ahead, rule.poles_behind
    else:
        behind = ahead = max(rule.poles_ahead, rule.poles_behind)
    lo = max(0, pos - behind)
    return street.luminaire_ids[lo : pos + ahead + 1]


def apply_detection(
    index: LightingIndex,
    holds: Mapping[str, PresenceHold],
    detection: Detection,
    last: Mapping[str, LuminaireDecision] | None = None,
) -> tuple[dict[str, PresenceHold], tuple[Command, ...]]:
    """New holds and the boost commands to send now for ``detection``.

    ``last`` holds the latest tick's decisions: a luminaire that is off (by day), under an
    override, or already at or above its boost gets its hold extended but no command.
    Without ``last`` every corridor luminaire gets a command. A command's id is derived from
    the luminaire and the detection's instant (the same detection twice is the same command);
    it is decided at the detection's instant and expires when the hold ends.
    """
    new_holds = dict(holds)
    commands: list[Command] = []
    stamp = detection.at.strftime("%Y%m%dT%H%M%S%f")
    for lum_id in corridor(index, detection):
        rule = index.segments[index.luminaires[lum_id].segment_id].presence
        if rule is None:
            continue
        until = detection.at + timedelta(seconds=rule.hold_s)
        old = new_holds.get(lum_id)
        if old is not None and old.until >= until:
            continue
        new_holds[lum_id] = PresenceHold(
            lum_id, rule.boost_pct, until, rule.ramp_up_s, rule.ramp_down_s
        )
        prior = last.get(lum_id) if last is not None else None
        if prior is not None and (
            prior.overridden or prior.base_pct <= 0.0 or prior.level_pct >= rule.boost_pct
        ):
            continue
        commands.append(
            Command(
                f"presence-{lum_id}-{stamp}",
                lum_id,
                CommandKind.DIM_LEVEL_PCT,
                rule.boost_pct,
                until,
                source=PRESENCE_SOURCE,
                ramp_s=rule.ramp_up_s,
                reason=f"presence boost {rule.boost_pct:g} % until {until.isoformat()}",
                decided_at=detection.at,
            )
        )
    return new_holds, tuple(commands)


def prune_holds(holds: Mapping[str, PresenceHold], now: datetime) -> dict[str, PresenceHold]:
    """Drop holds whose ramp-down has finished by ``now``."""
    return {k: h for k, h in holds.items() if now < h.until + timedelta(seconds=h.ramp_down_s)}
