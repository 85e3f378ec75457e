"""Register codec: hand-checked encodings, round trips, and the "not implemented" sentinels."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.modbus.codec import SIZE, decode, encode, is_not_implemented


@pytest.mark.parametrize(
    ("registers", "type_", "order", "expected"),
    [
        ([0x0001], "uint16", "big", 1),
        ([0xFFFF], "int16", "big", -1),
        ([0x8000], "int16", "big", -32768),
        ([0x0001, 0x0000], "uint32", "big", 65536),
        ([0x0000, 0x0001], "uint32", "little", 65536),
        ([0xFFFF, 0xFFFE], "int32", "big", -2),
        ([0x4366, 0x0000], "float32", "big", 230.0),  # SDM630 230 V
        ([0x0000, 0x4366], "float32", "little", 230.0),
        ([0x0000, 0x0000, 0x0001, 0x0000], "uint64", "big", 65536),
    ],
)
def test_decode_known_values(registers: list[int], type_: str, order: str, expected: float) -> None:
    assert decode(registers, type_, order) == expected  # type: ignore[arg-type]


def test_decode_refuses_wrong_register_count() -> None:
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode([1], "uint32")


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit int16"):
        encode(40000, "int16")


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trip(value: int, order: str) -> None:
    assert decode(encode(value, "int32", order), "int32", order) == value  # type: ignore[arg-type]


@given(
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.sampled_from(["big", "little"]),
)
def test_float32_round_trip(value: float, order: str) -> None:
    regs = encode(value, "float32", order)  # type: ignore[arg-type]
    assert len(regs) == SIZE["float32"]
    assert decode(regs, "float32", order) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type_", "raw", "absent"),
    [
        ("int16", -0x8000, True),
        ("int16", 0, False),
        ("uint16", 0xFFFF, True),
        ("enum16", 0xFFFF, True),
        ("uint16", 0xFFFE, False),
        ("acc32", 0, True),
        ("acc32", 1, False),
        ("uint32", 0xFFFFFFFF, True),
        ("int32", -0x80000000, True),
        ("sunssf", -0x8000, True),
        ("float32", math.nan, True),
        ("float32", 0.0, False),
    ],
)
def test_not_implemented_sentinels(type_: str, raw: float, absent: bool) -> None:
    assert is_not_implemented(raw, type_) is absent
