"""Retry delays: exponential, capped, jittered. One rule for every reconnect and retry.

After ``failures`` consecutive failures (1 = the first), the next try waits a uniformly random
time in ``[d/2, d]`` with ``d = min(cap_s, initial_s · factor^(failures−1))``: growing,
bounded, never zero, and spread so that many clients (pollers behind one gateway, services
after a broker restart) do not come back in lockstep. Used by Modbus reconnects and device
availability, SunSpec discovery retries and the MQTT bus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kernel.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays in seconds of the caller's clock."""

    initial_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.cap_s:
            raise ConfigError(
                "backoff", f"need 0 < initial_s ({self.initial_s}) <= cap_s ({self.cap_s})"
            )
        if not self.factor >= 1.0:
            raise ConfigError("backoff.factor", f"{self.factor} must be at least 1")

    def bound_s(self, failures: int) -> float:
        """The longest delay after ``failures`` consecutive failures (0 before any)."""
        if failures <= 0:
            return 0.0
        return min(self.cap_s, self.initial_s * self.factor ** min(failures - 1, 62))

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """A jittered delay in ``[bound/2, bound]``."""
        ceiling = self.bound_s(failures)
        return rng.uniform(ceiling / 2, ceiling) if ceiling else 0.0


__all__ = ["Backoff"]
