"""The site's devices, opened through the production drivers.

``async with SiteDevices(site.devices, clock) as devices:`` opens every device of the site
file through one :class:`~protocols.modbus.connection.ModbusPool` (devices behind the same
``host:port`` share a connection) and :func:`~protocols.modbus.factory.open_device`:

* a register-template driver is built without I/O; a device that is away reports
  unavailable readings through the driver's own availability/backoff;
* a SunSpec device must be *discovered* (its model chain read) before a driver exists. A
  device that is away at start does not hold the start up: it is an :class:`AwayDevice` in
  :attr:`SiteDevices.readable` (every read raises ``DeviceUnavailable`` naming why, so the
  cycle counts it unavailable) and discovery is retried in the background with capped,
  jittered backoff on the injected clock until it answers. Then the real driver takes its
  place in :attr:`readable` and :attr:`writable`.

:attr:`writable` is one dict, updated in place, so a
:class:`~scheduler.cycle.CommandWriter` built on it sees late-discovered devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from kernel.backoff import Backoff
from kernel.clock import Clock
from kernel.errors import ConfigError, DeviceUnavailable, WaldstadtError
from kernel.readings import Reading
from protocols.capabilities import Device
from protocols.modbus.connection import ModbusPool
from protocols.modbus.factory import SUNSPEC, open_device
from scheduler.reading import Gateway
from scheduler.site import DeviceConfig

log = logging.getLogger(__name__)

#: Discovery retries of a SunSpec device that is away: 2 s, 4 s, … up to 5 min (clock time).
DISCOVERY_BACKOFF = Backoff(initial_s=2.0, cap_s=300.0)


class AwayDevice:
    """Stands in for a SunSpec device whose discovery has not succeeded yet."""

    def __init__(self, device_id: str, reason: str) -> None:
        self._device_id = device_id
        self.reason = reason

    @property
    def device_id(self) -> str:
        return self._device_id

    async def read(self) -> Sequence[Reading]:
        raise DeviceUnavailable(self._device_id, f"not discovered yet ({self.reason})")


class SiteDevices:
    """Owns the pool, the drivers and the discovery retries of one site."""

    def __init__(
        self,
        configs: Sequence[DeviceConfig],
        clock: Clock,
        *,
        backoff: Backoff = DISCOVERY_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self._configs = list(configs)
        self._clock = clock
        self._backoff = backoff
        self._rng = rng or random.Random()
        timeout_s = max((c.timeout_s for c in self._configs), default=1.0)
        self.pool = ModbusPool(timeout_s=timeout_s, clock=clock)
        self._readable: dict[str, Device] = {}
        #: opened drivers by device name (updated in place as discoveries succeed)
        self.writable: dict[str, object] = {}
        self._retries: dict[str, asyncio.Task[None]] = {}
        #: discovery attempts that failed, per device (for tests and the operator page)
        self.discovery_failures: dict[str, int] = {}

    @property
    def readable(self) -> list[Device]:
        """Every device of the site in file order: drivers, and stand-ins for the away."""
        return [self._readable[c.name] for c in self._configs if c.name in self._readable]

    def gateways(self) -> list[Gateway]:
        """The readable devices by gateway connection (``host:port``), in file order: the
        cycle reads each gateway's devices in turn and the gateways in parallel."""
        groups: dict[str, list[Device]] = {}
        for c in self._configs:
            dev = self._readable.get(c.name)
            if dev is not None:
                groups.setdefault(f"{c.host}:{c.port}", []).append(dev)
        return [Gateway(name, devs) for name, devs in groups.items()]

    @property
    def away(self) -> dict[str, str]:
        """Devices still waiting for discovery, with the last reason."""
        return {n: d.reason for n, d in self._readable.items() if isinstance(d, AwayDevice)}

    async def __aenter__(self) -> Self:
        try:
            await asyncio.gather(*(self._open_first(c) for c in self._configs))
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        tasks = list(self._retries.values())
        self._retries.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pool.close()

    async def _try_open(self, cfg: DeviceConfig) -> str | None:
        """Open the driver; ``None`` on success, else why not (the device is away)."""
        try:
            driver = await open_device(
                cfg.name, cfg.driver, cfg.host, cfg.port, cfg.unit_id, self.pool, self._clock
            )
        except ConfigError:
            raise
        except (WaldstadtError, OSError, TimeoutError) as exc:
            return str(exc) or type(exc).__name__
        self._readable[cfg.name] = driver
        self.writable[cfg.name] = driver
        return None

    async def _open_first(self, cfg: DeviceConfig) -> None:
        reason = await self._try_open(cfg)
        if reason is None:
            return
        if cfg.driver != SUNSPEC:  # template drivers are built without I/O: cannot happen
            raise AssertionError(f"{cfg.name}: template driver failed to build: {reason}")
        log.warning(
            "device %s: SunSpec discovery failed (%s); retrying in background", cfg.name, reason
        )
        self._readable[cfg.name] = AwayDevice(cfg.name, reason)
        self.discovery_failures[cfg.name] = 1
        self._retries[cfg.name] = asyncio.create_task(self._retry(cfg), name=f"discover {cfg.name}")

    async def _retry(self, cfg: DeviceConfig) -> None:
        while True:
            await self._clock.sleep(
                self._backoff.delay_s(self.discovery_failures[cfg.name], self._rng)
            )
            reason = await self._try_open(cfg)
            if reason is None:
                log.info("device %s discovered after %d failed attempt(s)", cfg.name,
                         self.discovery_failures[cfg.name])  # fmt: skip
                self._retries.pop(cfg.name, None)
                return
            self.discovery_failures[cfg.name] += 1
            away = self._readable[cfg.name]
            assert isinstance(away, AwayDevice)
            away.reason = reason


__all__ = ["DISCOVERY_BACKOFF", "AwayDevice", "SiteDevices"]
