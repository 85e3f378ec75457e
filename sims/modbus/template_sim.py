"""Serve any register template with chosen channel values (the inverse of the driver).

Used to exercise every shipped template against a real server: give it the engineering value
of each channel, it writes the raw registers the template describes (type, word order,
scale, sign, a scale-factor register with an exponent that keeps integer values exact).
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols.modbus.codec import SIZE, encode
from protocols.modbus.template import Template
from sims.modbus.server import SimUnit, Table

_INT_RANGE = {
    "int16": (-0x7FFF, 0x7FFF),
    "uint16": (0, 0xFFFE),
    "enum16": (0, 0xFFFE),
    "bitfield16": (0, 0xFFFE),
    "sunssf": (-10, 10),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFE),
    "acc32": (1, 0xFFFFFFFF),
    "bitfield32": (0, 0xFFFFFFFE),
    "int64": (-(2**63) + 1, 2**63 - 1),
    "uint64": (0, 2**64 - 2),
    "acc64": (1, 2**64 - 1),
}


def _sf_for(raw_unscaled: float, type_: str) -> int:
    """The largest-precision exponent (−3..6) at which ``raw_unscaled`` fits ``type_``."""
    lo, hi = _INT_RANGE[type_]
    for sf in range(-3, 7):
        r = round(raw_unscaled / 10.0**sf)
        if lo <= r <= hi:
            return sf
    raise ValueError(f"{raw_unscaled} does not fit {type_} with any scale factor")


class TemplateSim(SimUnit):
    """A device whose registers hold ``values`` (by channel) as ``template`` describes them.

    ``values`` missing a channel leaves its registers at 0. Writable setpoints of the template
    are accepted and stored.
    """

    def __init__(self, template: Template, values: Mapping[str, float]) -> None:
        super().__init__()
        self.template = template
        regs: dict[Table, dict[int, int]] = {"holding": {}, "input": {}}
        d = template.defaults
        # channels sharing a scale-factor register share its exponent: the coarsest they need
        shared_sf: dict[tuple[Table, int], int] = {}
        raws: dict[str, float] = {}
        for channel, reg in template.channels.items():
            if channel not in values:
                continue
            raw = values[channel] / reg.factor
            raws[channel] = -raw if reg.sign == "inverted" else raw
            if reg.scale_factor is not None:
                key = (reg.scale_factor.table or reg.table or d.table, reg.scale_factor.address)
                need = _sf_for(raws[channel], reg.type or d.type)
                shared_sf[key] = max(shared_sf.get(key, need), need)
        for (sf_table, sf_address), sf in shared_sf.items():
            regs[sf_table][sf_address] = encode(sf, "int16")[0]
        for channel, raw in raws.items():
            reg = template.channels[channel]
            table = reg.table or d.table
            type_ = reg.type or d.type
            order = reg.word_order or d.word_order
            if reg.scale_factor is not None:
                raw = (
                    raw
                    / 10.0 ** shared_sf[(reg.scale_factor.table or table, reg.scale_factor.address)]
                )
            words = encode(raw if type_.startswith("float") else round(raw), type_, order)
            for i, w in enumerate(words):
                regs[table][reg.address + i] = w
        for sp in template.setpoints.values():
            type_ = sp.type or d.type
            for a in range(sp.address, sp.address + SIZE[type_]):
                regs["holding"].setdefault(a, 0)
                self.writable.add(a)
            for extra in (sp.revert, sp.enable):
                if extra is not None:
                    size = SIZE[getattr(extra, "type", "uint16")]
                    for a in range(extra.address, extra.address + size):
                        regs["holding"].setdefault(a, 0)
                        self.writable.add(a)
        for table, cells in regs.items():
            if cells:
                lo, hi = min(cells), max(cells)
                self.add_bank(table, lo, [cells.get(a, 0) for a in range(lo, hi + 1)])
