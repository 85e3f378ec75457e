"""Register codec: 16-bit Modbus registers ⇄ numbers.

Modbus only knows 16-bit registers; a 32-bit value spans two of them and devices disagree on
which comes first (``word_order`` ``big``: high word first, the SunSpec and Eastron order;
``little``: low word first). Bytes inside a register are always big-endian.

"Not implemented" values are part of the format, not of the device: SunSpec marks an absent
int16 with 0x8000, an absent uint16/enum16 with 0xFFFF, an absent acc32 with 0, and so on.
:func:`is_not_implemented` knows these; templates may add their own sentinels.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal, get_args

RegisterType = Literal[
    "int16",
    "uint16",
    "enum16",
    "bitfield16",
    "sunssf",
    "int32",
    "uint32",
    "acc32",
    "bitfield32",
    "float32",
    "int64",
    "uint64",
    "acc64",
    "float64",
]
WordOrder = Literal["big", "little"]

REGISTER_TYPES: tuple[str, ...] = get_args(RegisterType)

#: SunSpec scale factors lie in −10..10; anything else is a broken register, read as absent.
SF_LIMIT = 10

#: Number of 16-bit registers each type occupies.
SIZE: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "enum16": 1,
    "bitfield16": 1,
    "sunssf": 1,
    "int32": 2,
    "uint32": 2,
    "acc32": 2,
    "bitfield32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "acc64": 4,
    "float64": 4,
}

#: struct format (big-endian) of the value once the words are in big-endian order.
_FORMAT: dict[str, str] = {
    "int16": ">h",
    "uint16": ">H",
    "enum16": ">H",
    "bitfield16": ">H",
    "sunssf": ">h",
    "int32": ">i",
    "uint32": ">I",
    "acc32": ">I",
    "bitfield32": ">I",
    "float32": ">f",
    "int64": ">q",
    "uint64": ">Q",
    "acc64": ">Q",
    "float64": ">d",
}

#: The SunSpec "not implemented" raw value of each type (before any scaling).
NOT_IMPLEMENTED: dict[str, int] = {
    "int16": -0x8000,
    "sunssf": -0x8000,
    "uint16": 0xFFFF,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "int32": -0x80000000,
    "uint32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "acc32": 0,
    "int64": -0x8000000000000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
    "acc64": 0,
}


def decode(registers: Sequence[int], type_: str, word_order: WordOrder = "big") -> int | float:
    """Decode ``SIZE[type_]`` registers into the raw (unscaled) value."""
    size = SIZE[type_]
    if len(registers) != size:
        raise ValueError(f"{type_} needs {size} registers, got {len(registers)}")
    words = registers if word_order == "big" or size == 1 else list(reversed(registers))
    raw = struct.pack(f">{size}H", *words)
    value: int | float = struct.unpack(_FORMAT[type_], raw)[0]
    return value


def encode(value: int | float, type_: str, word_order: WordOrder = "big") -> list[int]:
    """Encode a raw value into registers (the inverse of :func:`decode`).

    Integers are range-checked by ``struct``: an out-of-range value raises ``ValueError``
    instead of wrapping around silently.
    """
    size = SIZE[type_]
    fmt = _FORMAT[type_]
    try:
        packed = struct.pack(fmt, value if fmt[-1] in "fd" else int(value))
    except struct.error as exc:
        raise ValueError(f"{value!r} does not fit {type_}: {exc}") from exc
    words = list(struct.unpack(f">{size}H", packed))
    return words if word_order == "big" else list(reversed(words))


def is_not_implemented(raw: int | float, type_: str) -> bool:
    """True when ``raw`` is the type's "not implemented" sentinel (or a float NaN)."""
    if isinstance(raw, float):
        return math.isnan(raw)
    sentinel = NOT_IMPLEMENTED.get(type_)
    return sentinel is not None and raw == sentinel
