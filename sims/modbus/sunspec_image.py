"""Build SunSpec register images from the pysunspec2 model definitions.

Simulators and tests serve what real devices serve: the ``SunS`` marker, a chain of models
(ID, L, body) laid out from :func:`protocols.sunspec.models.model_def`, and the end marker
0xFFFF. Points not given a value carry their type's "not implemented" value, as on a device
that does not implement them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from protocols.modbus.codec import NOT_IMPLEMENTED, encode
from protocols.sunspec.discovery import END_ID, SUNS_MARKER
from protocols.sunspec.models import ModelDef, PointDef, model_def
from sims.modbus.server import SimUnit

Raw = int | float | str

_ONE_REGISTER_INTS: dict[str, tuple[int, int]] = {
    "int16": (-0x8000, 0x7FFF),
    "sunssf": (-0x8000, 0x7FFF),
    "uint16": (0, 0xFFFF),
    "enum16": (0, 0xFFFF),
    "bitfield16": (0, 0xFFFF),
}


def scaled(value: float, sf: int) -> int:
    """Raw integer for an engineering value with scale factor ``sf`` (value = raw × 10^sf)."""
    return round(value / 10.0**sf)


def encode_point(p: PointDef, raw: Raw | None) -> list[int]:
    """Registers of one point; ``None`` = not implemented."""
    if p.type == "pad":
        return [0] * p.size
    if p.type == "string":
        text = "" if raw is None else str(raw)
        data = text.encode("utf-8")[: p.size * 2].ljust(p.size * 2, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if raw is None:
        if p.type in ("float32", "float64"):
            return encode(float("nan"), p.type)
        sentinel = NOT_IMPLEMENTED.get(p.type)
        if sentinel is None:
            return [0] * p.size
        return encode(sentinel, p.type)
    if p.type not in NOT_IMPLEMENTED and p.type not in ("float32", "float64"):
        return [0] * p.size  # types the project does not use (ipaddr, eui48 …)
    if isinstance(raw, str):
        raise TypeError(f"point {p.name} ({p.type}) needs a number, got {raw!r}")
    return encode(raw, p.type)


def model_registers(model_id: int, values: Mapping[str, Raw] | None = None) -> list[int]:
    """One model (ID, L, body) with raw point ``values`` by name."""
    m: ModelDef = model_def(model_id)
    values = dict(values or {})
    unknown = set(values) - {p.name for p in m.points}
    if unknown:
        raise KeyError(f"model {model_id} has no points {sorted(unknown)}")
    regs: list[int] = []
    for p in m.points:
        if p.name == "ID":
            regs.append(m.id)
        elif p.name == "L":
            regs.append(m.length)
        else:
            regs.extend(encode_point(p, values.get(p.name)))
    return regs


class SunSpecImage:
    """A full SunSpec map starting at ``base``: marker, models, end marker.

    ``address_of(model_id)`` gives the ID register of a model; ``set``/``get`` change and read
    single points in place, so a simulator can update its measurements between requests.
    """

    def __init__(self, base: int, models: Sequence[tuple[int, Mapping[str, Raw]]]) -> None:
        self.base = base
        self.registers: list[int] = list(SUNS_MARKER)
        self._starts: dict[int, int] = {}
        for model_id, values in models:
            self._starts.setdefault(model_id, base + len(self.registers))
            self.registers.extend(model_registers(model_id, values))
        self.registers.extend([END_ID, 0])
        self._index: dict[tuple[int, str], tuple[PointDef, int]] = {}

    def address_of(self, model_id: int) -> int:
        return self._starts[model_id]

    def _locate(self, model_id: int, name: str) -> tuple[PointDef, int]:
        """The point and its index into ``registers`` (cached: simulators call this a lot)."""
        key = (model_id, name)
        hit = self._index.get(key)
        if hit is None:
            p = model_def(model_id).point(name)
            hit = (p, self._starts[model_id] + p.offset - self.base)
            self._index[key] = hit
        return hit

    def point_address(self, model_id: int, name: str) -> int:
        return self.base + self._locate(model_id, name)[1]

    def set(self, model_id: int, name: str, raw: Raw | None) -> None:
        p, o = self._locate(model_id, name)
        limits = _ONE_REGISTER_INTS.get(p.type)
        if limits is not None and isinstance(raw, int) and limits[0] <= raw <= limits[1]:
            self.registers[o] = raw & 0xFFFF  # fast path for one-register integers
            return
        self.registers[o : o + p.size] = encode_point(p, raw)

    def get_regs(self, model_id: int, name: str) -> list[int]:
        p, o = self._locate(model_id, name)
        return self.registers[o : o + p.size]


class SunSpecImageUnit(SimUnit):
    """A device that serves a fixed :class:`SunSpecImage` (holding registers from its base);
    ``writable`` addresses accept writes. For decoding tests and recorded device images."""

    def __init__(self, image: SunSpecImage, writable: set[int] | None = None) -> None:
        super().__init__()
        self.image = image
        self.add_bank("holding", image.base, image.registers)
        self.writable = set(writable or ())
