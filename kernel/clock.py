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
import multiprocessing
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


class _Rate:
    """The clock's rate in one process: simulated seconds since start at real instant ``t0``
    (``time.monotonic``), and the speed since then."""

    def __init__(self, speed: float) -> None:
        self._state = (0.0, time.monotonic(), speed)

    def read(self) -> tuple[float, float, float]:
        return self._state

    def write(self, base_s: float, t0: float, speed: float) -> None:
        self._state = (base_s, t0, speed)


class SharedRate:
    """The same rate seen by several processes (the demo's town and its controller): three
    doubles in shared memory under one lock. ``time.monotonic`` is one clock for all
    processes of the machine, so they all compute the same simulated instant. Create it in
    the parent and hand it to the child process (it pickles for ``spawn``)."""

    def __init__(self, speed: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._array = ctx.Array("d", [0.0, time.monotonic(), float(speed)])

    def read(self) -> tuple[float, float, float]:
        with self._array.get_lock():
            base_s, t0, speed = self._array[:]
        return base_s, t0, speed

    def write(self, base_s: float, t0: float, speed: float) -> None:
        with self._array.get_lock():
            self._array[:] = [base_s, t0, speed]


class SimClock:
    """Simulated time: ``start + (real elapsed) × speed``.

    :meth:`set_speed` changes the speed from now on without a jump: simulated time is
    continuous, only its rate changes (the demo slows its clock when the machine cannot keep
    up). A sleeper that started before a change wakes after its simulated seconds at the
    speeds in force meanwhile, at most ``SPEED_CHECK_S`` real seconds late or early. Clocks of
    several processes built on one :class:`SharedRate` (``rate=``) show the same time and
    change speed together."""

    #: A sleep re-checks the speed at least this often, in real seconds.
    SPEED_CHECK_S = 0.25

    def __init__(
        self, start: datetime, speed: float = 1.0, *, rate: SharedRate | None = None
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("SimClock speed must be positive")
        self._start = start.astimezone(UTC)
        self._rate: _Rate | SharedRate = rate if rate is not None else _Rate(float(speed))

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def rate(self) -> _Rate | SharedRate:
        return self._rate

    @property
    def speed(self) -> float:
        return self._rate.read()[2]

    def set_speed(self, speed: float) -> None:
        """Run ``speed`` times faster than real time from now on."""
        if speed <= 0:
            raise ValueError("SimClock speed must be positive")
        base_s, t0, old = self._rate.read()
        now_real = time.monotonic()
        self._rate.write(base_s + (now_real - t0) * old, now_real, float(speed))

    def _elapsed_s(self) -> float:
        base_s, t0, speed = self._rate.read()
        return base_s + (time.monotonic() - t0) * speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed_s())

    def monotonic(self) -> float:
        return self._elapsed_s()

    async def sleep(self, seconds: float) -> None:
        due = self._elapsed_s() + max(0.0, seconds)
        while True:
            left_real = (due - self._elapsed_s()) / self.speed
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
