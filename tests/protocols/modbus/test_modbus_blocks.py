"""Block planning: ≤ 125 registers per read, nearby spans merged, every span covered."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.modbus.blocks import MAX_READ_REGISTERS, Block, RegisterImage, plan_blocks


@pytest.mark.parametrize(
    ("spans", "max_gap", "expected"),
    [
        ([(0, 2), (2, 2)], 0, [Block(0, 4)]),  # adjacent → one
        ([(0, 2), (6, 2)], 8, [Block(0, 8)]),  # a small gap is read through
        ([(0, 2), (52, 2)], 8, [Block(0, 2), Block(52, 2)]),  # a large one is not
        ([(40070, 156)], 0, [Block(40070, 125), Block(40195, 31)]),  # 156 > 125: split
        ([(0, 300)], 0, [Block(0, 125), Block(125, 125), Block(250, 50)]),
        ([(10, 2), (0, 2), (10, 2)], 0, [Block(0, 2), Block(10, 2)]),  # order, duplicates
    ],
)
def test_plan(spans: list[tuple[int, int]], max_gap: int, expected: list[Block]) -> None:
    assert plan_blocks(spans, max_gap=max_gap) == expected


spans_st = st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 200)), min_size=1, max_size=30)


@given(spans_st, st.integers(0, 20))
def test_blocks_cover_every_span_and_respect_the_limit(
    spans: list[tuple[int, int]], max_gap: int
) -> None:
    blocks = plan_blocks(spans, max_gap=max_gap)
    assert all(1 <= b.count <= MAX_READ_REGISTERS for b in blocks)
    assert all(a.end <= b.address for a, b in itertools.pairwise(blocks))
    covered = {a for b in blocks for a in range(b.address, b.end)}
    for address, count in spans:
        assert set(range(address, address + count)) <= covered


@given(spans_st)
def test_register_image_serves_windows_across_split_blocks(spans: list[tuple[int, int]]) -> None:
    blocks = plan_blocks(spans, max_gap=0)
    image = RegisterImage(blocks, [[a & 0xFFFF for a in range(b.address, b.end)] for b in blocks])
    for address, count in spans:
        assert image.window(address, count) == list(range(address, address + count))


def test_register_image_refuses_unread_addresses() -> None:
    image = RegisterImage([Block(10, 2)], [[1, 2]])
    with pytest.raises(KeyError):
        image.window(11, 2)
    with pytest.raises(KeyError):
        image.window(9, 1)
