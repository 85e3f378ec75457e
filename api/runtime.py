"""What the web app reads of a running service: one typed interface, nothing else.

``create_app(settings, runtime=None)``: without a runtime (tests of the API alone, the
benchmarks) the app serves from the store only; with one, ``/ready``, ``/metrics`` and the
live views ask it through :class:`Runtime`. The composition root's service implements it
(``app.service``); tests and benchmarks pass small fakes that implement it too.

Everything here is read-only except :meth:`LightingControl.reconfigure`, the one action the
lighting routes take on the running service (a new lighting configuration takes effect).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from kernel.clock import Clock
from lighting.config import LightingConfig, LightingSite
from lighting.failures import NodeReport
from lighting.tick import LuminaireDecision, SegmentDecision
from scheduler.health import Readiness
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.site import Site


class LightingControl(Protocol):
    """The running lighting of the service."""

    @property
    def decisions(self) -> Mapping[str, LuminaireDecision]:
        """Each luminaire's current target with its reason chain."""
        ...

    @property
    def segment_decisions(self) -> Mapping[str, SegmentDecision]: ...

    @property
    def node_states(self) -> Mapping[str, NodeReport]:
        """The newest state report of each node."""
        ...

    async def reconfigure(self, site: LightingSite) -> None:
        """Switch to a changed lighting configuration at once."""
        ...


class Runtime(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics: ...

    async def readiness(self) -> Readiness: ...

    @property
    def site(self) -> Site | None:
        """The site file the service runs (None: a runtime without one)."""
        ...

    @property
    def lighting(self) -> LightingControl | None:
        """The lighting of the service (None: the site has none)."""
        ...

    def live(self) -> LiveView:
        """The newest cycle's state (an empty view before the first cycle)."""
        ...


def lighting_control(runtime: Runtime | None) -> LightingControl | None:
    """The runtime's lighting, or None: no runtime, or lighting off."""
    return None if runtime is None else runtime.lighting


def site_of(runtime: Runtime | None) -> Site | None:
    """The runtime's site file, or None without a runtime."""
    return None if runtime is None else runtime.site


def site_lighting(runtime: Runtime | None) -> LightingConfig | None:
    """The ``lighting:`` section of the runtime's site file."""
    site = site_of(runtime)
    return None if site is None else site.lighting


__all__ = [
    "LightingControl",
    "LiveView",
    "Runtime",
    "lighting_control",
    "site_lighting",
    "site_of",
]
