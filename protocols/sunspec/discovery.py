"""Walk a SunSpec device's model chain.

The map starts with the marker ``SunS`` (0x5375 0x6E53) in the holding registers at 40000
(some devices use 0 or 50000, so those are probed as well). Then models follow back to back:
``ID``, ``L`` (the body length, without ID and L), body. ID 0xFFFF ends the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.errors import DeviceProtocolError
from protocols.modbus.connection import ModbusConnection

SUNS_MARKER = (0x5375, 0x6E53)
BASE_ADDRESSES = (40000, 0, 50000)
END_ID = 0xFFFF
_MAX_MODELS = 64


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where one model sits: ``address`` of its ID register and its body ``length``."""

    id: int
    address: int
    length: int

    @property
    def count(self) -> int:
        """Registers of the whole model, ID and L included."""
        return self.length + 2


@dataclass(frozen=True, slots=True)
class SunSpecMap:
    """A device's model chain."""

    base: int
    models: tuple[ModelLocation, ...]

    def find(self, model_id: int) -> ModelLocation | None:
        """First model with this id, or ``None``."""
        for m in self.models:
            if m.id == model_id:
                return m
        return None

    def first_of(self, *model_ids: int) -> ModelLocation | None:
        """The first model in the chain whose id is one of ``model_ids``."""
        for m in self.models:
            if m.id in model_ids:
                return m
        return None

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(m.id for m in self.models)


async def discover(
    conn: ModbusConnection,
    unit_id: int,
    *,
    device_id: str,
    bases: tuple[int, ...] = BASE_ADDRESSES,
) -> SunSpecMap:
    """Find the marker and walk the chain. ``DeviceUnavailable`` propagates (the device is
    away); a device that answers but has no marker raises ``DeviceProtocolError``."""
    base: int | None = None
    for candidate in bases:
        try:
            regs = await conn.read(unit_id, "holding", candidate, 2, device_id=device_id)
        except DeviceProtocolError:
            continue  # illegal address here: try the next base
        if tuple(regs) == SUNS_MARKER:
            base = candidate
            break
    if base is None:
        raise DeviceProtocolError(
            device_id, f"no SunSpec marker 'SunS' at holding registers {list(bases)}"
        )
    models: list[ModelLocation] = []
    address = base + 2
    for _ in range(_MAX_MODELS):
        if address + 2 > 0x10000:
            raise DeviceProtocolError(device_id, f"SunSpec chain runs past 65535 at {address}")
        model_id, length = await conn.read(unit_id, "holding", address, 2, device_id=device_id)
        if model_id == END_ID:
            return SunSpecMap(base, tuple(models))
        models.append(ModelLocation(model_id, address, length))
        address += 2 + length
    raise DeviceProtocolError(
        device_id, f"SunSpec chain at {base} has more than {_MAX_MODELS} models or no end marker"
    )
