"""What the lighting's sensors and nodes say, kept until the next cycle takes it.

The bus hands every message to these handlers as it arrives: a traffic count (from the
sensor's own network server; one through another is counted and ignored) becomes the
newest sample of its segment, a presence detection is queued for the snapshot (and goes
through the fast path at once, :mod:`scheduler.lighting.runtime`), a node's state report
becomes its newest :class:`~lighting.failures.NodeReport` (an older or redelivered report is
ignored: at-least-once delivery says nothing new), an availability message its online flag.
:meth:`LightingInbox.take` gives the cycle all of it as frozen :class:`LightingInputs`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from types import MappingProxyType

from kernel.readings import Reading
from lighting.config import DEFAULT_NETWORK
from lighting.failures import NodeReport
from lighting.presence import Detection
from lighting.site import LightingIndex
from lighting.traffic import TrafficSample
from protocols.lorawan.uplink import Uplink
from protocols.streetlight import LightState
from scheduler.lighting.config import ServiceStats
from scheduler.lighting.uplinks import presence_detection, sensor_of, traffic_sample
from scheduler.snapshot import LightingInputs

log = logging.getLogger(__name__)

DetectionHandler = Callable[[Detection], Awaitable[object]]


class LightingInbox:
    """The newest sample, report and availability per segment or node, and the detections
    since the last :meth:`take`."""

    def __init__(
        self,
        index: LightingIndex,
        stats: ServiceStats,
        network_of: Callable[[str], str] = lambda _sensor_id: DEFAULT_NETWORK,
    ) -> None:
        self.index = index
        self.stats = stats
        self._network_of = network_of
        self._misrouted: set[tuple[str, str]] = set()
        self._traffic: dict[str, TrafficSample] = {}
        self._presence: list[Detection] = []
        self._reports: dict[str, NodeReport] = {}
        self._online: dict[str, bool] = {}
        self._on_detection: DetectionHandler | None = None
        self.running = False

    def on_detection(self, handler: DetectionHandler) -> None:
        """Hand every detection to ``handler`` as it arrives (the presence fast path)."""
        self._on_detection = handler

    def reindex(
        self,
        index: LightingIndex,
        network_of: Callable[[str], str] = lambda _sensor_id: DEFAULT_NETWORK,
    ) -> None:
        """Keep only what belongs to the luminaires and segments of a changed site."""
        self.index = index
        self._network_of = network_of
        self._traffic = {k: v for k, v in self._traffic.items() if k in index.segments}
        self._reports = {k: v for k, v in self._reports.items() if k in index.luminaires}
        self._online = {k: v for k, v in self._online.items() if k in index.luminaires}

    @property
    def reports(self) -> MappingProxyType[str, NodeReport]:
        return MappingProxyType(self._reports)

    def take(self) -> LightingInputs:
        presence, self._presence = tuple(self._presence), []
        return LightingInputs(
            traffic=MappingProxyType(dict(self._traffic)),
            presence=presence,
            reports=MappingProxyType(dict(self._reports)),
            online=MappingProxyType(dict(self._online)),
        )

    # -- bus handlers ------------------------------------------------------------------------

    async def uplink(self, _readings: list[Reading], uplink: Uplink) -> None:
        if not self.running:
            return
        sensor = sensor_of(self.index, uplink)
        if sensor is None:
            self.stats.unknown_sensors += 1
            return
        own = self._network_of(sensor.sensor_id)
        if uplink.network != own:
            self._misrouted_uplink(sensor.sensor_id, own, uplink.network)
            return
        sample = traffic_sample(self.index, sensor, uplink)
        if sample is not None:
            self._traffic[sample.segment_id] = sample.sample
            self.stats.traffic_samples += 1
            return
        detection = presence_detection(self.index, sensor, uplink)
        if detection is not None:
            self.stats.detections += 1
            self._presence.append(detection)
            if self._on_detection is not None:
                await self._on_detection(detection)

    def _misrouted_uplink(self, sensor_id: str, own: str, came: str) -> None:
        """A sensor's data comes through its own network server only (another one's topic
        may carry a spoofed or stale device): counted, said once per sensor and network."""
        self.stats.wrong_network += 1
        if (sensor_id, came) not in self._misrouted and len(self._misrouted) < 10_000:
            self._misrouted.add((sensor_id, came))
            log.warning("sensor %s: uplink through %s ignored, the site file names %s",
                        sensor_id, came, own)  # fmt: skip

    async def state(self, node_id: str, state: LightState) -> None:
        if not self.running or node_id not in self.index.luminaires:
            return
        ts = state.ts.astimezone(UTC)
        last = self._reports.get(node_id)
        if last is not None and ts <= last.ts:
            return
        self.stats.state_reports += 1
        self._reports[node_id] = NodeReport(
            node_id,
            ts,
            state.level_pct,
            state.power_w,
            state.energy_wh,
            state.status,
            tuple(state.failures),
        )

    async def availability(self, node_id: str, is_online: bool) -> None:
        if self.running and node_id in self.index.luminaires:
            self._online[node_id] = is_online


__all__ = ["DetectionHandler", "LightingInbox"]
