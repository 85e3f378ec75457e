"""One frozen view of all devices at one cycle instant: what every decider sees."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from kernel.readings import Quality, Reading


@dataclass(frozen=True)
class Snapshot:
    """Readings of one cycle, by device and channel.

    ``unavailable`` lists devices that did not answer in this cycle: their channels are absent
    (or present with quality *unavailable*), never zero and never last cycle's values.
    """

    at: datetime
    readings: Mapping[str, Mapping[str, Reading]]
    unavailable: frozenset[str] = frozenset()
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(
        cls,
        at: datetime,
        readings: Iterable[Reading],
        unavailable: Iterable[str] = (),
        errors: Mapping[str, str] | None = None,
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
        )

    def value(self, device_id: str, channel: str) -> float | None:
        """The channel's value, or ``None`` when the device or the channel is unavailable."""
        r = self.readings.get(device_id, {}).get(channel)
        if r is None or r.quality is Quality.UNAVAILABLE:
            return None
        return r.value

    def available(self, device_id: str) -> bool:
        return device_id not in self.unavailable and device_id in self.readings
