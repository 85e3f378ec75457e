"""Availability of one device: up or down, with the reason and its own retry backoff.

A device that stops answering is *unavailable*: its readings are
``Reading.unavailable(...)``, never zero and never the last value, and ``reason`` says why.
While it is down it is only retried after a capped, jittered backoff, so that a silent unit
does not cost its gateway neighbours one timeout per cycle. Going down and coming back are
logged once each by the cycle that reads the devices (``scheduler.reading.Availability``),
not here: one place says it, for every kind of device.
"""

from __future__ import annotations

import random

from kernel.backoff import Backoff
from kernel.clock import Clock


class Availability:
    """Up/down state and retry schedule of one device (times on ``clock.monotonic()``)."""

    def __init__(
        self,
        device_id: str,
        clock: Clock,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.device_id = device_id
        self._clock = clock
        self._backoff = backoff or Backoff(initial_s=1.0, cap_s=60.0)
        self._rng = rng or random.Random()
        self._failures = 0
        self._retry_at = 0.0
        self.available = True
        self.reason: str | None = None

    def due(self) -> bool:
        """Whether the device should be asked now (always while up; after the backoff when
        down)."""
        return self.available or self._clock.monotonic() >= self._retry_at

    @property
    def retry_in_s(self) -> float:
        return max(0.0, self._retry_at - self._clock.monotonic())

    def succeeded(self) -> None:
        self.available = True
        self.reason = None
        self._failures = 0
        self._retry_at = 0.0

    def failed(self, reason: str) -> None:
        self.available = False
        self.reason = reason
        self._failures += 1
        self._retry_at = self._clock.monotonic() + self._backoff.delay_s(self._failures, self._rng)
