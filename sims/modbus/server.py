"""A simulated Modbus TCP gateway: one pymodbus server on 127.0.0.1, several unit ids.

Each unit is a :class:`SimUnit` -- a register image that brings itself up to date (from the
injected clock) before every request and reacts to writes. The gateway can make one unit go
*silent* (it stops answering, the client times out, like a dead RS485 slave) and can be
stopped and restarted on the same port (a gateway reboot).

pymodbus 3.16 serves a datastore through ``ModbusServerContext``; :class:`_GatewayContext`
is that datastore, answering from the units directly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

Table = Literal["holding", "input"]

_READ_TABLE: dict[int, Table] = {
    3: "holding",
    4: "input",
    6: "holding",
    16: "holding",
    23: "holding",
}


class RegisterBank:
    """A contiguous run of registers starting at ``start``. A ``list`` passed in is shared,
    not copied, so that its owner can update values in place."""

    __slots__ = ("regs", "start")

    def __init__(self, start: int, regs: Sequence[int]) -> None:
        self.start = start
        self.regs = regs if isinstance(regs, list) else list(regs)

    def covers(self, address: int, count: int) -> bool:
        return self.start <= address and address + count <= self.start + len(self.regs)

    def get(self, address: int, count: int) -> list[int]:
        o = address - self.start
        return self.regs[o : o + count]

    def put(self, address: int, values: Sequence[int]) -> None:
        o = address - self.start
        self.regs[o : o + len(values)] = list(values)


class SimUnit:
    """Registers of one simulated device. Subclasses override :meth:`refresh` (bring the
    image up to date before a request) and :meth:`on_write` (react to a setpoint)."""

    def __init__(self) -> None:
        self.banks: dict[Table, list[RegisterBank]] = {"holding": [], "input": []}
        #: holding-register addresses a client may write; others answer "illegal address"
        self.writable: set[int] = set()
        #: start addresses of the latest accepted writes, oldest first (for tests)
        self.write_log: deque[int] = deque(maxlen=64)
        #: (table, address, count) of the latest reads, oldest first (for tests)
        self.read_log: deque[tuple[Table, int, int]] = deque(maxlen=64)

    def add_bank(self, table: Table, start: int, regs: Sequence[int]) -> RegisterBank:
        bank = RegisterBank(start, regs)
        self.banks[table].append(bank)
        return bank

    def _bank(self, table: Table, address: int, count: int) -> RegisterBank | None:
        for bank in self.banks[table]:
            if bank.covers(address, count):
                return bank
        return None

    def refresh(self) -> None:
        """Update the image from the clock; called before every request."""

    def on_write(self, address: int, values: list[int]) -> None:
        """React to a write that has just been stored."""

    def read(self, table: Table, address: int, count: int) -> list[int] | None:
        bank = self._bank(table, address, count)
        if bank is None:
            return None
        self.read_log.append((table, address, count))
        self.refresh()
        return bank.get(address, count)

    def write(self, address: int, values: list[int]) -> bool:
        bank = self._bank("holding", address, len(values))
        if bank is None or any(
            a not in self.writable for a in range(address, address + len(values))
        ):
            return False
        self.refresh()
        bank.put(address, values)
        self.write_log.append(address)
        self.on_write(address, values)
        return True


class _GatewayContext(ModbusServerContext):
    """The datastore pymodbus asks; answers from the gateway's units."""

    def __init__(self, gateway: GatewayServer) -> None:  # no super(): no legacy datastore
        self.old_simulator = True
        self.simdevices = []
        self._gateway = gateway

    def device_ids(self) -> list[int]:
        return sorted(self._gateway.units)

    def _unit(self, device_id: int) -> SimUnit | None:
        if device_id in self._gateway.silent:
            raise NoSuchIdException(f"unit {device_id} is silent")  # server sends nothing
        return self._gateway.units.get(device_id)

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        unit = self._unit(device_id)
        if unit is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        table = _READ_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        values = unit.read(table, address, count)
        return ExcCodes.ILLEGAL_ADDRESS if values is None else values

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        unit = self._unit(device_id)
        if unit is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if func_code not in (6, 16, 23):
            return ExcCodes.ILLEGAL_FUNCTION
        ok = unit.write(address, [int(v) for v in values])
        return None if ok else ExcCodes.ILLEGAL_ADDRESS


class _RequestHandler(ServerRequestHandler):
    """pymodbus 3.16 passes every request to the event loop with ``run_coroutine_threadsafe``
    (a self-pipe write and an extra loop turn, about 90 µs per request on this machine). The
    simulator serves from the loop's own thread, so a plain task does the same work; this keeps
    the simulated gateways from being the bottleneck of the client benchmark."""

    _pending: set[asyncio.Task[None]]

    def handle_later(self) -> None:
        if not hasattr(self, "_pending"):
            self._pending = set()
        task = self.loop.create_task(self.handle_request())  # type: ignore[no-untyped-call]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class _TcpServer(ModbusTcpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _RequestHandler(  # type: ignore[no-untyped-call]
            self, self.trace_packet, self.trace_pdu, self.trace_connect
        )


class GatewayServer:
    """A Modbus TCP server on ``host`` hosting ``units`` by unit id (port 0 = pick a free one)."""

    def __init__(
        self, units: dict[int, SimUnit] | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.host = host
        self.port = port
        self.units: dict[int, SimUnit] = dict(units or {})
        self.silent: set[int] = set()
        self._server: ModbusTcpServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        if self._server is not None:
            return
        server = _TcpServer(
            _GatewayContext(self), address=(self.host, self.port), ignore_missing_devices=True
        )
        await server.serve_forever(background=True)
        listener = server.transport
        assert isinstance(listener, asyncio.Server)
        self.port = int(listener.sockets[0].getsockname()[1])
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
            await asyncio.sleep(0)

    def silence(self, unit_id: int, silent: bool = True) -> None:
        """Make ``unit_id`` stop answering (or answer again)."""
        if silent:
            self.silent.add(unit_id)
        else:
            self.silent.discard(unit_id)
