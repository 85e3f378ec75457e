"""Decode a SunSpec model's registers into scaled values.

``value = raw × 10^SF``. A point whose raw value is its type's "not implemented" sentinel
(int16 0x8000, uint16/enum16 0xFFFF, acc32 0, uint32 0xFFFFFFFF, int32 0x80000000, float32
NaN …), or whose scale factor is 0x8000 (or outside −10..10), is ABSENT: ``None``, never a
number. Infinite floats are absent too.

Decoding is planned once per model (:class:`DecodePlan`) and then applied to every poll, so a
thousand devices cost a thousand list walks, not a thousand JSON parses.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from protocols.modbus.codec import NOT_IMPLEMENTED, SF_LIMIT
from protocols.sunspec.models import ModelDef, model_def

Value = float | int | str | None

_FMT = {
    "int16": "h",
    "sunssf": "h",
    "uint16": "H",
    "enum16": "H",
    "bitfield16": "H",
    "int32": "i",
    "uint32": "I",
    "acc32": "I",
    "bitfield32": "I",
    "float32": "f",
    "int64": "q",
    "uint64": "Q",
    "acc64": "Q",
    "float64": "d",
}


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    offset: int
    size: int
    fmt: str
    sentinel: int | None
    sf_offset: int | None
    kind: str  # "num", "float", "str", "skip"


@dataclass(frozen=True, slots=True)
class DecodePlan:
    """Precomputed decoding of one model; apply with :meth:`decode`."""

    model: ModelDef
    steps: tuple[_Step, ...]
    names: frozenset[str] | None

    def decode(self, registers: Sequence[int]) -> dict[str, Value]:
        """Values by point name from the model's registers, ID register first. ``registers``
        may be shorter than the model (a device with an older, shorter model): points beyond
        it are absent."""
        out: dict[str, Value] = {}
        n = len(registers)
        for st in self.steps:
            end = st.offset + st.size
            if end > n:
                out[st.name] = None
                continue
            if st.kind == "str":
                raw_bytes = struct.pack(f">{st.size}H", *registers[st.offset : end])
                text = raw_bytes.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
                out[st.name] = text or None
                continue
            if st.size == 1:
                reg = registers[st.offset]
                raw: int | float = reg - 0x10000 if st.fmt == "h" and reg >= 0x8000 else reg
            else:
                raw = struct.unpack(
                    f">{st.fmt}", struct.pack(f">{st.size}H", *registers[st.offset : end])
                )[0]
            if st.kind == "float":
                if not math.isfinite(raw):
                    out[st.name] = None
                    continue
            elif raw == st.sentinel:
                out[st.name] = None
                continue
            if st.sf_offset is not None:
                if st.sf_offset >= n:
                    out[st.name] = None
                    continue
                sf_reg = registers[st.sf_offset]
                if sf_reg == 0x8000:
                    out[st.name] = None
                    continue
                sf = sf_reg - 0x10000 if sf_reg >= 0x8000 else sf_reg
                if not -SF_LIMIT <= sf <= SF_LIMIT:
                    out[st.name] = None  # outside SunSpec's −10..10: garbage, not a number
                    continue
                out[st.name] = raw * 10.0**sf if sf else raw
            else:
                out[st.name] = raw
        return out


def build_plan(model: ModelDef, names: frozenset[str] | None = None) -> DecodePlan:
    """Plan the decoding of ``model``; only the points in ``names`` if given."""
    by_name = model.by_name
    steps: list[_Step] = []
    for p in model.points:
        if p.type == "pad" or p.name in ("ID", "L"):
            continue
        if names is not None and p.name not in names:
            continue
        if p.type == "string":
            steps.append(_Step(p.name, p.offset, p.size, "", None, None, "str"))
            continue
        if p.type not in _FMT:
            continue  # types this project has no use for (ipaddr, eui48 …)
        sf_offset = by_name[p.sf].offset if p.sf and p.sf in by_name else None
        kind = "float" if p.type in ("float32", "float64") else "num"
        steps.append(
            _Step(
                p.name, p.offset, p.size, _FMT[p.type], NOT_IMPLEMENTED.get(p.type), sf_offset, kind
            )
        )
    return DecodePlan(model, tuple(steps), names)


@cache
def plan_for(model_id: int) -> DecodePlan:
    """The full decode plan of a model (cached)."""
    return build_plan(model_def(model_id))


def decode_model(model_id: int, registers: Sequence[int]) -> dict[str, Value]:
    """Decode model ``model_id`` from its registers (starting with ID and L)."""
    return plan_for(model_id).decode(registers)
