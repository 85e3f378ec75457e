"""What the web app needs from a running service (``scheduler.service.Service`` provides it).

``create_app(settings, runtime=None)``: without a runtime (tests of the API alone, the
benchmarks) the app serves from the store only; with one, ``/ready``, ``/metrics`` and the live
views ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from lighting.config import LightingConfig, LightingSite
from lighting.tick import LuminaireDecision, SegmentDecision
from protocols.clock import Clock
from scheduler.health import Readiness
from scheduler.observability import Metrics


class Runtime(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics: ...

    async def readiness(self) -> Readiness: ...


class LightingControl(Protocol):
    """What the lighting routes use of a running
    :class:`scheduler.lighting.service.LightingService`."""

    @property
    def decisions(self) -> Mapping[str, LuminaireDecision]: ...

    @property
    def segment_decisions(self) -> Mapping[str, SegmentDecision]: ...

    async def reconfigure(self, site: LightingSite) -> None: ...


def lighting_control(runtime: Runtime | None) -> LightingControl | None:
    """The runtime's lighting service (``Service.lighting``), or None: no runtime, lighting
    off, or a runtime without lighting."""
    control: LightingControl | None = getattr(runtime, "lighting", None)
    return control


def site_lighting(runtime: Runtime | None) -> LightingConfig | None:
    """The ``lighting:`` section of the runtime's site file (``Service.site.lighting``)."""
    config = getattr(getattr(runtime, "site", None), "lighting", None)
    return config if isinstance(config, LightingConfig) else None


__all__ = ["LightingControl", "Runtime", "lighting_control", "site_lighting"]
