"""The lighting world as plain values: segments (street sections) and their luminaires, and an
index that the decision tick and the presence corridor read.

Luminaires stand along streets; ``pole_index`` is a luminaire's position in its street's order
(any increasing numbering), so a presence corridor can run across segment borders.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from lighting.classes import Classing
from lighting.energy import DEFAULT_CURVE, DriverCurve
from lighting.errors import LightingInputError
from lighting.presence import PresenceRule
from lighting.sun import Place
from lighting.traffic import TrafficRule


@dataclass(frozen=True, slots=True)
class Luminaire:
    """One luminaire: rated power in W at 100 %, standby power in W when dimmed to 0 %."""

    luminaire_id: str
    segment_id: str
    street_id: str
    pole_index: int
    rated_power_w: float
    standby_power_w: float = 0.5
    curve: DriverCurve = DEFAULT_CURVE

    def __post_init__(self) -> None:
        where = f"luminaire {self.luminaire_id!r}"
        if not self.rated_power_w > 0:
            raise LightingInputError(f"{where}.rated_power_w", "must be above 0 W")
        if not self.standby_power_w >= 0:
            raise LightingInputError(f"{where}.standby_power_w", "must not be negative")


@dataclass(frozen=True, slots=True)
class Segment:
    """A street section with one program calendar, one classing and optional traffic and
    presence rules. ``class_ramp_s`` is the ramp in s used when the traffic class changes."""

    segment_id: str
    latitude_deg: float | None
    longitude_deg: float | None
    classing: Classing
    calendar: str = "default"
    timezone: str = "Europe/Berlin"
    traffic: TrafficRule | None = None
    presence: PresenceRule | None = None
    class_ramp_s: float = 60.0
    place: Place = field(init=False)

    def __post_init__(self) -> None:
        place = Place(self.segment_id, self.latitude_deg, self.longitude_deg, self.timezone)
        object.__setattr__(self, "place", place)
        if self.classing.segment != self.segment_id:
            raise LightingInputError(
                f"segment {self.segment_id!r}.classing.segment",
                f"names segment {self.classing.segment!r}",
            )
        if not self.class_ramp_s >= 0:
            raise LightingInputError(f"segment {self.segment_id!r}.class_ramp_s", "is negative")


@dataclass(frozen=True, slots=True)
class Sensor:
    """A traffic or presence sensor: its counts feed ``segment_id``'s traffic adaptation, its
    detections start corridors at ``pole_index`` of ``street_id``."""

    sensor_id: str
    segment_id: str
    street_id: str
    pole_index: int


@dataclass(frozen=True, slots=True)
class Street:
    """Luminaires of one street in pole order: parallel tuples, sorted by ``poles``."""

    street_id: str
    poles: tuple[int, ...]
    luminaire_ids: tuple[str, ...]

    def between(self, first_pole: int, last_pole: int) -> tuple[str, ...]:
        """Luminaires whose pole index lies in [first_pole, last_pole]."""
        lo = bisect_left(self.poles, first_pole)
        hi = bisect_left(self.poles, last_pole + 1)
        return self.luminaire_ids[lo:hi]

    def position(self, pole: int) -> int:
        """Index in street order of the pole nearest to ``pole`` (ties go to the lower one)."""
        i = bisect_left(self.poles, pole)
        if i == len(self.poles):
            return i - 1
        if i > 0 and pole - self.poles[i - 1] <= self.poles[i] - pole:
            return i - 1
        return i


@dataclass(frozen=True, slots=True)
class LightingIndex:
    """Everything the tick looks up, built once per site configuration."""

    segments: dict[str, Segment]
    luminaires: dict[str, Luminaire]
    by_segment: dict[str, tuple[Luminaire, ...]]
    streets: dict[str, Street]
    sensors: dict[str, Sensor] = field(default_factory=dict)


def build_index(
    segments: Iterable[Segment],
    luminaires: Iterable[Luminaire],
    sensors: Iterable[Sensor] = (),
) -> LightingIndex:
    """Check references and uniqueness and build the lookups."""
    seg_map: dict[str, Segment] = {}
    for seg in segments:
        if seg.segment_id in seg_map:
            raise LightingInputError(f"segment {seg.segment_id!r}", "defined twice")
        seg_map[seg.segment_id] = seg
    lum_map: dict[str, Luminaire] = {}
    grouped: dict[str, list[Luminaire]] = {s: [] for s in seg_map}
    street_rows: dict[str, list[tuple[int, str]]] = {}
    for lum in luminaires:
        if lum.luminaire_id in lum_map:
            raise LightingInputError(f"luminaire {lum.luminaire_id!r}", "defined twice")
        if lum.segment_id not in seg_map:
            raise LightingInputError(
                f"luminaire {lum.luminaire_id!r}.segment_id", f"unknown segment {lum.segment_id!r}"
            )
        lum_map[lum.luminaire_id] = lum
        grouped[lum.segment_id].append(lum)
        street_rows.setdefault(lum.street_id, []).append((lum.pole_index, lum.luminaire_id))
    streets: dict[str, Street] = {}
    for street_id, rows in street_rows.items():
        rows.sort()
        for (a, first), (b, second) in itertools.pairwise(rows):
            if a == b:
                raise LightingInputError(
                    f"luminaire {second!r}.pole_index",
                    f"pole {b} of street {street_id!r} is taken by {first!r}",
                )
        streets[street_id] = Street(street_id, tuple(p for p, _ in rows), tuple(i for _, i in rows))
    by_segment = {s: tuple(v) for s, v in grouped.items()}
    sensor_map: dict[str, Sensor] = {}
    for sensor in sensors:
        where = f"sensor {sensor.sensor_id!r}"
        if sensor.sensor_id in sensor_map:
            raise LightingInputError(where, "defined twice")
        if sensor.segment_id not in seg_map:
            raise LightingInputError(
                f"{where}.segment_id", f"unknown segment {sensor.segment_id!r}"
            )
        if sensor.street_id not in streets:
            raise LightingInputError(f"{where}.street_id", f"no luminaire on {sensor.street_id!r}")
        sensor_map[sensor.sensor_id] = sensor
    return LightingIndex(seg_map, lum_map, by_segment, streets, sensor_map)
