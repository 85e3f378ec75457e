"""Reconnect delays: exponential, capped, with full jitter.

Full jitter (a uniform draw between zero and the exponential bound) spreads the reconnects of
many clients after a broker restart, so they do not arrive in one thundering herd.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocols.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays in seconds: attempt ``n`` (0-based) waits ``U(0, min(max_s, initial_s · 2^n))``,
    but at least ``floor_s`` so that a flapping broker is not hammered."""

    initial_s: float = 0.2
    max_s: float = 10.0
    floor_s: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ConfigError("backoff", f"need 0 < initial_s ({self.initial_s}) <= max_s")
        if not 0 <= self.floor_s <= self.initial_s:
            raise ConfigError("backoff", f"need 0 <= floor_s ({self.floor_s}) <= initial_s")

    def bound_s(self, attempt: int) -> float:
        """The upper bound of the delay before reconnect attempt ``attempt`` (0-based)."""
        return min(self.max_s, self.initial_s * 2.0 ** min(attempt, 62))

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        return max(self.floor_s, rng.uniform(0.0, self.bound_s(attempt)))
