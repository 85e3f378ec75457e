"""Poll many Modbus devices at once: gateways in parallel, the units behind each in turn.

Units behind one gateway take turns on its connection anyway (one request at a time). Reading
them in one task per gateway, rather than one task per device queueing on the connection's
lock, saves a thousand wake-ups per cycle and keeps the order stable. Gateways never wait for
each other; a silent unit delays only its own gateway's queue (and only until its backoff
keeps it out of the next cycles).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from kernel.readings import Reading
from protocols.modbus.connection import ModbusConnection


class PolledDevice(Protocol):
    """A Modbus driver: its id, its gateway connection, and one read of all channels."""

    @property
    def device_id(self) -> str: ...

    conn: ModbusConnection

    async def read(self) -> list[Reading]: ...


async def poll(devices: Sequence[PolledDevice]) -> dict[str, list[Reading]]:
    """One read of every device; readings by device id (unavailable ones included)."""
    by_conn: dict[int, list[PolledDevice]] = {}
    for dev in devices:
        by_conn.setdefault(id(dev.conn), []).append(dev)
    out: dict[str, list[Reading]] = {}

    async def gateway(queue: list[PolledDevice]) -> None:
        for dev in queue:
            out[dev.device_id] = await dev.read()

    async with asyncio.TaskGroup() as tg:
        for queue in by_conn.values():
            tg.create_task(gateway(queue), name=f"poll {queue[0].conn.name}")
    return out
