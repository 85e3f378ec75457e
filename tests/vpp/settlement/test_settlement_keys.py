"""Worked examples for every key, checked by hand against docs/domain.md §2.

Each row: key, consumption per member (sorted ids a, b, c), generation per member, expected
allocation per member, expected surplus. Both the scalar and the array path must agree.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vpp.settlement.allocate import allocate_bulk, allocate_quarter_hour
from vpp.settlement.apportion import apportion
from vpp.settlement.errors import KeyConfigError, SettlementInputError
from vpp.settlement.explain import explain_quarter_hour
from vpp.settlement.keys import (
    SharingKey,
    constant_key,
    contract_key,
    dynamic_key,
    proportional_key,
    static_key,
)

IDS = ("a", "b", "c")
THIRDS = {m: Fraction(1, 3) for m in IDS}

CASES: list[tuple[str, SharingKey, list[int], list[int], list[int], int]] = [
    # AT dynamic: A_i = C_i · min(1, G/ΣC)
    ("dynamic G<ΣC", dynamic_key(), [100, 50, 0], [0, 0, 120], [80, 40, 0], 0),
    ("dynamic G>ΣC", dynamic_key(), [100, 50, 0], [0, 0, 200], [100, 50, 0], 50),
    ("dynamic G=0", dynamic_key(), [100, 50, 0], [0, 0, 0], [0, 0, 0], 0),
    ("dynamic ΣC=0", dynamic_key(), [0, 0, 0], [0, 0, 100], [0, 0, 0], 100),
    # 2 Wh over three equal quotas of 2/3: one each to the first two ids
    ("dynamic remainder ties by id", dynamic_key(), [1, 1, 1], [0, 0, 2], [1, 1, 0], 0),
    # quotas 1.5 and 0.5 have equal remainders: the tie goes to a
    ("dynamic remainder tie 2", dynamic_key(), [3, 1, 0], [0, 0, 2], [2, 0, 0], 0),
    # AT static: A_i = min(C_i, k_i·G); unused share is surplus
    (
        "static unused share is surplus",
        static_key({"a": "0.5", "b": "0.3", "c": "0.2"}),
        [100, 10, 0],
        [0, 0, 100],
        [50, 10, 0],
        40,
    ),
    (
        "static shares below 100 %",
        static_key({"a": "0.5", "b": "0.3"}),
        [100, 100, 0],
        [0, 0, 100],
        [50, 30, 0],
        20,
    ),
    ("static G=0", static_key(THIRDS), [10, 10, 10], [0, 0, 0], [0, 0, 0], 0),
    ("static ΣC=0", static_key(THIRDS), [0, 0, 0], [50, 0, 0], [0, 0, 0], 50),
    # DE §42b constant key, equal parts: 100 Wh → 34/33/33 (the odd Wh to a)
    ("constant equal parts", constant_key(IDS), [50, 50, 50], [0, 0, 100], [34, 33, 33], 0),
    ("constant capped", constant_key(IDS), [10, 50, 50], [0, 0, 100], [10, 33, 33], 24),
    (
        "constant explicit factors",
        constant_key(IDS, {"a": "0.6", "b": "0.4", "c": "0"}),
        [100, 100, 100],
        [0, 0, 50],
        [30, 20, 0],
        0,
    ),
    # DE §42b proportional: r_i = C_i/ΣC
    ("proportional G<ΣC", proportional_key(), [30, 10, 0], [0, 0, 20], [15, 5, 0], 0),
    ("proportional ΣC=0", proportional_key(), [0, 0, 0], [0, 0, 20], [0, 0, 0], 20),
    # DE §42c contract key without and with re-offer
    (
        "contract no re-offer",
        contract_key({"a": "0.5", "b": "0.3", "c": "0.2"}),
        [100, 10, 0],
        [0, 0, 100],
        [50, 10, 0],
        40,
    ),
    (
        "contract re-offer one round",
        contract_key({"a": "0.5", "b": "0.3", "c": "0.2"}, reoffer=True),
        [100, 10, 0],
        [0, 0, 100],
        [90, 10, 0],
        0,
    ),
    # static 40/40/40 → a, b full; 30 left: 15/15 to b (takes 5) and c; 10 left → c
    (
        "contract re-offer two rounds",
        contract_key(THIRDS, reoffer=True),
        [10, 45, 100],
        [0, 0, 120],
        [10, 45, 65],
        0,
    ),
    (
        "contract re-offer G>ΣC",
        contract_key(THIRDS, reoffer=True),
        [10, 20, 30],
        [0, 0, 100],
        [10, 20, 30],
        40,
    ),
    (
        "re-offer skips members without a share",
        contract_key({"a": "0.5", "b": "0.5"}, reoffer=True),
        [10, 100, 100],
        [0, 0, 100],
        [10, 90, 0],
        0,
    ),
]


@pytest.mark.parametrize(
    ("key", "consumption", "generation", "allocated", "surplus"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_worked_example(
    key: SharingKey,
    consumption: list[int],
    generation: list[int],
    allocated: list[int],
    surplus: int,
) -> None:
    scalar = allocate_quarter_hour(key, IDS, consumption, generation)
    assert list(scalar.allocated_wh) == allocated
    assert scalar.surplus_wh == surplus
    bulk = allocate_bulk(
        key, IDS, np.array([consumption], dtype=np.int64), np.array([generation], dtype=np.int64)
    )
    assert bulk.allocated_wh[0].tolist() == allocated
    assert int(bulk.surplus_wh[0]) == surplus
    assert bulk.delivered_wh[0].tolist() == list(scalar.delivered_wh)


def test_producer_side_of_the_dynamic_key() -> None:
    """Producer j delivers G_j·min(1, ΣC/G): 80 and 40 Wh fed in, 60 Wh consumed."""
    result = allocate_quarter_hour(dynamic_key(), ("c1", "p1", "p2"), [60, 0, 0], [0, 80, 40])
    assert result.allocated_wh == (60, 0, 0)
    assert result.delivered_wh == (0, 40, 20)  # surplus 40 and 20
    assert result.surplus_wh == 60


def test_apportion_by_hand() -> None:
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(7, [0, 5, 2]) == [0, 5, 2]
    assert apportion(0, [0, 0]) == [0, 0]
    assert apportion(1, [1, 1, 1, 1]) == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="all-zero"):
        apportion(1, [0, 0])


@pytest.mark.parametrize(
    ("shares", "match"),
    [
        ({"a": "0.6", "b": "0.5"}, "sum to 110 %"),
        ({"a": "-0.1"}, "member 'a'.*negative"),
        ({"a": "1.5"}, "member 'a'.*above 100 %"),
        ({"a": "abc"}, "member 'a'.*not a number"),
    ],
)
def test_bad_shares_are_refused(shares: dict[str, str], match: str) -> None:
    with pytest.raises(KeyConfigError, match=match):
        static_key(shares)
    with pytest.raises(KeyConfigError, match=match):
        contract_key(shares, reoffer=True)


def test_constant_key_refuses_a_factor_for_a_stranger() -> None:
    with pytest.raises(KeyConfigError, match="member 'z'"):
        constant_key(["a", "b"], {"a": "0.5", "z": "0.5"})


def test_bulk_refuses_negative_energy_naming_the_member() -> None:
    c = np.array([[1, 2, 3], [4, -5, 6]], dtype=np.int64)
    g = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(SettlementInputError, match="row 1") as err:
        allocate_bulk(dynamic_key(), IDS, c, g)
    assert (err.value.member_id, err.value.field) == ("b", "consumption_wh")
    with pytest.raises(SettlementInputError) as err:
        allocate_bulk(dynamic_key(), IDS, g, -np.abs(c))
    assert (err.value.member_id, err.value.field) == ("a", "generation_wh")


def test_explanation_shows_quota_rounding_cap_and_reoffer() -> None:
    key = contract_key(THIRDS, reoffer=True)
    steps = explain_quarter_hour(key, IDS, [10, 45, 100], [0, 0, 121])
    assert [s.quota_wh for s in steps] == [Fraction(121, 3)] * 3
    assert [s.rounded_wh for s in steps] == [41, 40, 40]  # the odd Wh goes to a (id order)
    assert [s.capped_wh for s in steps] == [10, 40, 40]
    assert [s.allocated_wh for s in steps] == list(
        allocate_quarter_hour(key, IDS, [10, 45, 100], [0, 0, 121]).allocated_wh
    )
    assert sum(s.reoffered_wh for s in steps) == 31
    assert "re-offered" in steps[2].text()
    assert "capped at consumption 10" in steps[0].text()
    dyn = explain_quarter_hour(dynamic_key(), IDS, [1, 1, 1], [0, 0, 2])
    assert [(s.quota_wh, s.allocated_wh) for s in dyn] == [
        (Fraction(2, 3), 1),
        (Fraction(2, 3), 1),
        (Fraction(2, 3), 0),
    ]


def test_bulk_refuses_values_beyond_exact_int64() -> None:
    huge = np.array([[2**40, 0, 0]], dtype=np.int64)
    with pytest.raises(SettlementInputError, match="too large") as err:
        allocate_bulk(dynamic_key(), IDS, huge, huge)
    assert err.value.field == "generation_wh"
