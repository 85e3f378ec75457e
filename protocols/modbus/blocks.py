"""Plan block reads: few requests, none longer than the protocol allows.

A Modbus read returns at most 125 registers (function 03/04). Reading each value on its own
costs one round trip per value; reading everything from the lowest to the highest address
reads registers nobody asked for (and some devices answer "illegal address" for holes). The
planner merges spans that lie close together (a gap of at most ``max_gap`` registers) into one
block and splits any block longer than ``max_count``.

:class:`RegisterImage` holds what the blocks returned and serves any window of it, also one
that straddles two blocks (a 32-bit value cut by a split).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Largest register count of one read request (Modbus application protocol, function 03/04).
MAX_READ_REGISTERS = 125


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers from ``address``."""

    address: int
    count: int

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.address + self.count


def plan_blocks(
    spans: Iterable[tuple[int, int]],
    *,
    max_count: int = MAX_READ_REGISTERS,
    max_gap: int = 8,
) -> list[Block]:
    """Blocks covering every ``(address, count)`` span, merged across gaps ≤ ``max_gap``
    registers, none longer than ``max_count`` registers."""
    if not 1 <= max_count <= MAX_READ_REGISTERS:
        raise ValueError(f"max_count must be 1..{MAX_READ_REGISTERS}, got {max_count}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be ≥ 0, got {max_gap}")
    ordered = sorted((a, c) for a, c in spans if c > 0)
    merged: list[list[int]] = []  # [start, end)
    for address, count in ordered:
        if address < 0 or address + count > 0x10000:
            raise ValueError(f"span {address}+{count} leaves the 16-bit address space")
        end = address + count
        if merged and address <= merged[-1][1] + max_gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([address, end])
    blocks: list[Block] = []
    for start, end in merged:
        while start < end:
            count = min(max_count, end - start)
            blocks.append(Block(start, count))
            start += count
    return blocks


class RegisterImage:
    """Registers returned by a set of block reads, addressable by register address."""

    __slots__ = ("_data", "_starts")

    def __init__(self, blocks: Sequence[Block], data: Sequence[Sequence[int]]) -> None:
        if len(blocks) != len(data):
            raise ValueError("one data list per block is needed")
        pairs = sorted(zip(blocks, data, strict=True), key=lambda p: p[0].address)
        self._starts = [b.address for b, _ in pairs]
        self._data = [list(d) for _, d in pairs]
        for block, regs in pairs:
            if len(regs) != block.count:
                raise ValueError(
                    f"block at {block.address} expected {block.count} registers, got {len(regs)}"
                )

    def window(self, address: int, count: int) -> list[int]:
        """``count`` registers from ``address``; ``KeyError`` if any was not read."""
        out: list[int] = []
        at = address
        while len(out) < count:
            i = bisect.bisect_right(self._starts, at) - 1
            if i < 0:
                raise KeyError(address)
            start = self._starts[i]
            regs = self._data[i]
            offset = at - start
            if offset >= len(regs):
                raise KeyError(at)
            take = regs[offset : offset + (count - len(out))]
            out.extend(take)
            at += len(take)
        return out
