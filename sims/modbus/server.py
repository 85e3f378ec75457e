"""A simulated Modbus TCP gateway: one pymodbus server on 127.0.0.1, several unit ids.

Each unit is a :class:`SimUnit` -- a register image that brings itself up to date (from the
injected clock) before every request and reacts to writes. The gateway can make one unit go
*silent* (it stops answering, the client times out, like a dead RS485 device behind a TCP
gateway) and can be stopped and restarted on the same port (a gateway reboot).

Built on pymodbus's public server API (3.16): a ``ModbusTcpServer`` over one ``SimDevice``
per unit id. A ``SimDevice``'s registers only mark which addresses exist; its ``action``
(pymodbus's documented hook, called before every access) answers from the unit: a read copies
the refreshed image into the registers pymodbus returns, a write goes to the unit (which may
refuse it) before pymodbus stores it. A silent unit's action raises pymodbus's
``NoSuchIdException``, which the server (``ignore_missing_devices=True``) answers with silence;
a unit id that is not there gets exception 0x0B (gateway target failed to respond) from a
catch-all device. The register layout is taken when the gateway starts: units and banks added
later take effect at the next :meth:`GatewayServer.start`.

pymodbus serves one connection's requests strictly one at a time (a request is parsed into
the connection's single "last request" slot and answered before the next is read), as a real
RS485 gateway does; a client must not pipeline requests on one connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

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


_WRITE_CODES = frozenset({6, 16, 23})


def _layout(banks: Sequence[RegisterBank]) -> list[SimData]:
    """Addresses that exist in one table: the banks' ranges, merged where they touch."""
    spans: list[list[int]] = []
    for start, end in sorted((b.start, b.start + len(b.regs)) for b in banks if b.regs):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    if not spans:  # pymodbus needs one block per table: a register that does not exist
        return [SimData(0, count=1, datatype=DataType.INVALID)]
    return [SimData(a, count=b - a, values=0, datatype=DataType.REGISTERS) for a, b in spans]


class _Unit:
    """The ``action`` of one unit's ``SimDevice``: the unit's answers, or silence."""

    def __init__(self, gateway: GatewayServer, unit_id: int) -> None:
        self.gateway = gateway
        self.unit_id = unit_id

    def device(self) -> SimDevice:
        unit = self.gateway.units[self.unit_id]
        coils, inputs = ([SimData(0, values=False, datatype=DataType.BITS)] for _ in range(2))
        holding, registers = _layout(unit.banks["holding"]), _layout(unit.banks["input"])
        return SimDevice(self.unit_id, (coils, inputs, holding, registers), action=self.act)

    async def act(
        self,
        func_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self.unit_id in self.gateway.silent:
            raise NoSuchIdException(f"unit {self.unit_id} is silent")  # the server says nothing
        unit = self.gateway.units.get(self.unit_id)
        table = _READ_TABLE.get(func_code)
        if unit is None or table is None:
            return ExcCodes.GATEWAY_NO_RESPONSE if unit is None else ExcCodes.ILLEGAL_FUNCTION
        if set_values is not None and func_code in _WRITE_CODES:
            ok = unit.write(address, [int(v) for v in set_values])
            return None if ok else ExcCodes.ILLEGAL_ADDRESS  # pymodbus stores what was taken
        values = unit.read(table, address, count)
        if values is None:
            return ExcCodes.ILLEGAL_ADDRESS
        offset = address - start_address
        registers[offset : offset + count] = values
        return None


async def _no_such_unit(*_request: object) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE


#: Every other unit id: all addresses exist, so that the action answers them all with 0x0B.
_CATCH_ALL = SimDevice(
    0,
    simdata=[SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)],
    action=_no_such_unit,
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
        devices = [_Unit(self, unit_id).device() for unit_id in sorted(self.units)]
        devices.append(_CATCH_ALL)
        server = ModbusTcpServer(
            devices, address=(self.host, self.port), ignore_missing_devices=True
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
