"""Keep a curtailment alive: refresh it before the inverter's revert time runs out.

A limit written with a revert time (``WMaxLimPct_RvrtTms``) is dropped by the inverter when
nobody rewrites it in time. That is the fail-safe when the controller dies (fault F2); while
the controller lives, the :class:`CurtailmentKeeper` rewrites the limit at ``refresh_fraction``
of the revert time (half of it by default, never later), on the injected clock.

Run it in a TaskGroup (``tg.create_task(keeper.run(), name=...)``) or as an async context
manager that owns its task.

The running service (``scheduler.service``) does NOT use the keeper: there the one refresh
mechanism is ``scheduler.cycle.CommandWriter``, which re-sends every setpoint in force at half
its revert time through ``SunSpecInverter.set_power_limit_pct``. The keeper is for a single
inverter held outside the service (tools, tests); never run both on the same inverter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from kernel.clock import Clock
from kernel.errors import WaldstadtError

log = logging.getLogger(__name__)


class LimitWriter(Protocol):
    @property
    def device_id(self) -> str: ...

    async def write_limit(self, limit_pct: float, revert_s: int) -> None: ...

    async def clear_power_limit(self, command_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Target:
    limit_pct: float
    revert_s: int
    command_id: str


class CurtailmentKeeper:
    """Holds one inverter's limit and refreshes it on ``clock`` time.

    ``retry_s`` is how soon a failed refresh is tried again (capped so that a retry still
    lands before the revert time would expire, when possible).
    """

    def __init__(
        self,
        inverter: LimitWriter,
        clock: Clock,
        *,
        refresh_fraction: float = 0.5,
        retry_s: float = 5.0,
    ) -> None:
        if not 0.0 < refresh_fraction <= 0.5:
            raise ValueError(f"refresh_fraction must be in (0, 0.5], got {refresh_fraction}")
        self._inverter = inverter
        self._clock = clock
        self._fraction = refresh_fraction
        self._retry_s = retry_s
        self._target: _Target | None = None
        self._next_at = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: number of successful writes (first write and refreshes), for tests and health
        self.writes = 0

    @property
    def target_pct(self) -> float | None:
        return None if self._target is None else self._target.limit_pct

    async def set(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        """Write the limit now and keep refreshing it. A repeated command id is a no-op."""
        if self._target is not None and self._target.command_id == command_id:
            return
        await self._inverter.write_limit(limit_pct, revert_s)
        self.writes += 1
        self._target = _Target(limit_pct, revert_s, command_id)
        self._schedule_refresh()
        self._changed.set()

    async def clear(self, command_id: str) -> None:
        """Stop refreshing and lift the limit."""
        self._target = None
        self._changed.set()
        await self._inverter.clear_power_limit(command_id)

    def _schedule_refresh(self) -> None:
        assert self._target is not None
        self._next_at = self._clock.monotonic() + self._target.revert_s * self._fraction

    async def _sleep_until(self, deadline: float) -> None:
        # measured against the clock when the sleep starts, so a late start never oversleeps
        while (left := deadline - self._clock.monotonic()) > 0:
            await self._clock.sleep(left)

    async def _wait(self, deadline: float | None) -> None:
        """Sleep until clock-monotonic ``deadline``, or until the target changes."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._changed.wait())}
        if deadline is not None:
            waiters.add(asyncio.ensure_future(self._sleep_until(deadline)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        self._changed.clear()

    async def run(self) -> None:
        """Refresh loop; runs until cancelled."""
        while True:
            target = self._target
            if target is None or target.revert_s == 0:
                await self._wait(None)
                continue
            if self._next_at > self._clock.monotonic():
                await self._wait(self._next_at)
                continue
            try:
                await self._inverter.write_limit(target.limit_pct, target.revert_s)
            except WaldstadtError as exc:
                retry = min(self._retry_s, max(0.1, target.revert_s * self._fraction / 2))
                log.warning(
                    "curtailment of %s not refreshed (%s); retry in %.1f s",
                    self._inverter.device_id,
                    exc,
                    retry,
                )
                self._next_at = self._clock.monotonic() + retry
                continue
            if self._target is target:
                self.writes += 1
                self._schedule_refresh()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(
            self.run(), name=f"curtailment keeper {self._inverter.device_id}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
