"""What the web app needs from a running service (``scheduler.service.Service`` provides it).

``create_app(settings, runtime=None)``: without a runtime (tests of the API alone, the
benchmarks) the app serves from the store only; with one, ``/ready``, ``/metrics`` and the live
views ask it.
"""

from __future__ import annotations

from typing import Protocol

from protocols.clock import Clock
from scheduler.health import Readiness
from scheduler.observability import Metrics


class Runtime(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics: ...

    async def readiness(self) -> Readiness: ...


__all__ = ["Runtime"]
