"""One frozen view of the site at one cycle instant: what every decider sees.

A snapshot holds the devices' readings (with quality), the street lighting's inputs that
arrived since the previous cycle (traffic samples, presence detections, node reports and node
availability) and the commands the writer keeps in force at that instant, so that a decider
can tell "unchanged" from "new" without a memory of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from kernel.commands import Command, CommandKind
from kernel.readings import Quality, Reading
from lighting.failures import NodeReport
from lighting.presence import Detection
from lighting.traffic import TrafficSample


@dataclass(frozen=True)
class LightingInputs:
    """What the street lighting's sensors and nodes said up to one instant.

    ``traffic``: the newest sample per segment; ``presence``: the detections received since
    the previous snapshot, in arrival order; ``reports``: the newest state report per
    luminaire; ``online``: each node's last availability message (absent: never said)."""

    traffic: Mapping[str, TrafficSample] = field(default_factory=lambda: MappingProxyType({}))
    presence: tuple[Detection, ...] = ()
    reports: Mapping[str, NodeReport] = field(default_factory=lambda: MappingProxyType({}))
    online: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))


NO_LIGHTING_INPUTS = LightingInputs()


@dataclass(frozen=True)
class Snapshot:
    """Readings of one cycle, by device and channel, and what else the deciders need.

    ``unavailable`` lists devices that did not answer in this cycle: their channels are absent
    (or present with quality *unavailable*), never zero and never last cycle's values;
    ``errors`` says why. ``in_force`` are the writer's commands in force at ``at`` by kind
    and target."""

    at: datetime
    readings: Mapping[str, Mapping[str, Reading]]
    unavailable: frozenset[str] = frozenset()
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lighting: LightingInputs = NO_LIGHTING_INPUTS
    in_force: Mapping[CommandKind, Mapping[str, Command]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def build(
        cls,
        at: datetime,
        readings: Iterable[Reading],
        unavailable: Iterable[str] = (),
        errors: Mapping[str, str] | None = None,
        *,
        lighting: LightingInputs = NO_LIGHTING_INPUTS,
        in_force: Mapping[CommandKind, Mapping[str, Command]] | None = None,
    ) -> Snapshot:
        by_device: dict[str, dict[str, Reading]] = {}
        for r in readings:
            by_device.setdefault(r.device_id, {})[r.channel] = r
        frozen = {d: MappingProxyType(ch) for d, ch in by_device.items()}
        return cls(
            at=at,
            readings=MappingProxyType(frozen),
            unavailable=frozenset(unavailable),
            errors=MappingProxyType(dict(errors or {})),
            lighting=lighting,
            in_force=MappingProxyType(
                {
                    kind: MappingProxyType(dict(targets))
                    for kind, targets in (in_force or {}).items()
                }
            ),
        )

    def value(self, device_id: str, channel: str) -> float | None:
        """The channel's value, or ``None`` when the device or the channel is unavailable."""
        r = self.readings.get(device_id, {}).get(channel)
        if r is None or r.quality is Quality.UNAVAILABLE:
            return None
        return r.value

    def available(self, device_id: str) -> bool:
        return device_id not in self.unavailable and device_id in self.readings

    def command_in_force(self, target: str, kind: CommandKind) -> Command | None:
        return self.in_force.get(kind, {}).get(target)

    def all_readings(self) -> list[Reading]:
        """Every reading of the snapshot (devices, then none of the lighting inputs)."""
        return [r for chans in self.readings.values() for r in chans.values()]


__all__ = ["NO_LIGHTING_INPUTS", "LightingInputs", "Snapshot"]
