"""The clock, injected everywhere: no other code reads the time.

It lives at the bottom of the tree because the runtime (``scheduler``) and the simulated
devices (``sims``) both need it. Three implementations:

* :class:`RealClock` -- wall time (UTC) and real sleeps;
* :class:`SimClock` -- starts at a chosen instant and runs ``speed`` times faster than real
  time (the demo: one day in ten minutes is speed 144);
* :class:`ManualClock` -- stands still until a test advances it.

``monotonic()`` is for timeouts; it never jumps.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Current instant, aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale of *this clock's* time (for timeouts and ramps)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...

    @property
    def speed(self) -> float:
        """How many clock seconds pass per real second."""
        ...


class RealClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    """Simulated time: ``start + (real elapsed) × speed``.

    :meth:`set_speed` changes the speed from now on without a jump: simulated time is
    continuous, only its rate changes (the demo slows its clock when the machine cannot keep
    up). A sleeper that started before a change wakes after its simulated seconds at the
    speeds in force meanwhile, at most ``SPEED_CHECK_S`` real seconds late or early."""

    #: A sleep re-checks the speed at least this often, in real seconds.
    SPEED_CHECK_S = 0.25

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("SimClock speed must be positive")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._t0 = time.monotonic()
        #: simulated seconds since ``start`` at real ``_t0`` (grows with each speed change)
        self._base_s = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Run ``speed`` times faster than real time from now on."""
        if speed <= 0:
            raise ValueError("SimClock speed must be positive")
        now_real = time.monotonic()
        self._base_s += (now_real - self._t0) * self._speed
        self._t0 = now_real
        self._speed = float(speed)

    def _elapsed_s(self) -> float:
        return self._base_s + (time.monotonic() - self._t0) * self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed_s())

    def monotonic(self) -> float:
        return self._elapsed_s()

    async def sleep(self, seconds: float) -> None:
        due = self._elapsed_s() + max(0.0, seconds)
        while True:
            left_real = (due - self._elapsed_s()) / self._speed
            await asyncio.sleep(max(0.0, min(left_real, self.SPEED_CHECK_S)))
            if left_real <= self.SPEED_CHECK_S:
                return


class ManualClock:
    """A clock that only moves when told to; sleepers wake when their time is reached."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, instant: datetime) -> None:
        delta = (instant.astimezone(UTC) - self._now).total_seconds()
        if delta < 0:
            raise ValueError("ManualClock cannot go backwards")
        self.advance(delta)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("ManualClock cannot go backwards")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        still: list[tuple[float, asyncio.Future[None]]] = []
        for due, fut in self._waiters:
            if due <= self._mono:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((due, fut))
        self._waiters = still

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._mono + seconds, fut))
        await fut
