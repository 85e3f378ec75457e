"""Reading the site's devices: one task per gateway connection, its devices in turn.

A Modbus TCP gateway in front of an RS485 line serves one request at a time, so the devices
behind one gateway are read one after the other by one task, and gateways are read in
parallel. A device's time budget (``timeout_s``, real seconds) starts when its turn comes —
never while it waits behind its neighbours — so a silent unit costs only its own budget and
never makes the healthy units behind the same gateway look unavailable. (Before, every
device had its own task and timeout, and the wait for the gateway's lock counted against it:
with 2 of 8 units silent, all 8 read as unavailable in 4 of 6 cycles.)

A device is *unavailable* in a cycle when its read raised, ran out of its budget, or gave
only unavailable values; the reason comes from the error or from the driver's own
availability (:class:`~protocols.capabilities.ReportsAvailability`). :class:`Availability`
logs a device going down once and coming back once, whatever the number of cycles between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kernel.errors import WaldstadtError
from kernel.readings import Reading
from protocols.capabilities import Device, ReportsAvailability

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Gateway:
    """The devices behind one connection (``name``: ``host:port``), in reading order."""

    name: str
    devices: Sequence[Device]


@dataclass(slots=True)
class ReadResult:
    readings: list[Reading] = field(default_factory=list)
    unavailable: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)


async def _read_one(dev: Device, timeout_s: float) -> tuple[Sequence[Reading] | None, str]:
    try:
        async with asyncio.timeout(timeout_s):
            return await dev.read(), ""
    except TimeoutError:
        return None, f"timeout after {timeout_s:g} s"
    except WaldstadtError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"


async def read_gateways(gateways: Sequence[Gateway], timeout_s: float) -> ReadResult:
    """Read every device once: gateways in parallel, each gateway's devices in turn."""
    result = ReadResult()

    async def one_gateway(gw: Gateway) -> None:
        for dev in gw.devices:
            got, err = await _read_one(dev, timeout_s)
            device_id = dev.device_id
            if got is None:
                result.unavailable.add(device_id)
                result.errors[device_id] = err
                continue
            result.readings.extend(got)
            if got and all(not r.available for r in got):
                result.unavailable.add(device_id)
                reason = dev.unavailable_reason if isinstance(dev, ReportsAvailability) else None
                result.errors[device_id] = reason or "no values"

    async with asyncio.TaskGroup() as tg:
        for gw in gateways:
            if gw.devices:
                tg.create_task(one_gateway(gw), name=f"read {gw.name}")
    return result


class Availability:
    """Which devices are down: one log line when a device goes, one when it comes back."""

    def __init__(self) -> None:
        self._down: dict[str, str] = {}

    @property
    def down(self) -> dict[str, str]:
        """The devices down now, with the reason they went down."""
        return dict(self._down)

    def update(self, unavailable: Iterable[str], errors: dict[str, str]) -> None:
        now_down = set(unavailable)
        for dev in sorted(now_down - self._down.keys()):
            reason = errors.get(dev, "no values")
            self._down[dev] = reason
            log.warning("device %s unavailable: %s", dev, reason)
        for dev in sorted(self._down.keys() - now_down):
            del self._down[dev]
            log.info("device %s available again", dev)


__all__ = ["Availability", "Gateway", "ReadResult", "read_gateways"]
