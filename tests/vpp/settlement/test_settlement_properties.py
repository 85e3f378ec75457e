"""Invariants over random communities: energy is conserved and caps hold, exactly.

For every quarter-hour and every key: ``0 ≤ A_i ≤ C_i``, ``Σ A + S = G``,
``Σ A ≤ min(G, ΣC)``, ``Σ delivered = Σ A``, ``0 ≤ delivered_j ≤ G_j``; the array path equals
the scalar path; and the same holds through a full settlement of 92- and 100-interval days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.quarterhours import local_day_bounds, quarter_hours_in_day
from vpp.settlement.allocate import allocate_bulk, allocate_quarter_hour
from vpp.settlement.apportion import apportion, apportion_rows
from vpp.settlement.keys import (
    SharingKey,
    constant_key,
    contract_key,
    dynamic_key,
    proportional_key,
    static_key,
)
from vpp.settlement.model import (
    Community,
    KeyPeriod,
    MemberInterval,
    Membership,
    SettlementInputs,
    Tariff,
)
from vpp.settlement.settle import settle_lines
from vpp.settlement.statement import StatementLine

energy = st.one_of(st.just(0), st.integers(0, 20), st.integers(0, 5_000))


@st.composite
def keys(draw: st.DrawFn, ids: tuple[str, ...]) -> SharingKey:
    kind = draw(st.sampled_from(["dyn", "prop", "static", "const", "contract", "reoffer"]))
    if kind == "dyn":
        return dynamic_key()
    if kind == "prop":
        return proportional_key()
    if kind == "const":
        return constant_key(ids)
    raw = draw(st.lists(st.integers(0, 100), min_size=len(ids), max_size=len(ids)))
    scale = max(sum(raw), draw(st.integers(1, 100)))
    shares = {m: Fraction(r, scale) for m, r in zip(ids, raw, strict=True)}
    if kind == "static":
        return static_key(shares)
    return contract_key(shares, reoffer=kind == "reoffer")


@st.composite
def communities(draw: st.DrawFn) -> tuple[SharingKey, tuple[str, ...], np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 7))
    rows = draw(st.integers(1, 6))
    ids = tuple(f"m{i}" for i in range(n))
    key = draw(keys(ids))
    c = draw(st.lists(energy, min_size=rows * n, max_size=rows * n))
    g = draw(st.lists(energy, min_size=rows * n, max_size=rows * n))
    return (
        key,
        ids,
        np.array(c, dtype=np.int64).reshape(rows, n),
        np.array(g, dtype=np.int64).reshape(rows, n),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_conservation_and_caps(
    case: tuple[SharingKey, tuple[str, ...], np.ndarray, np.ndarray],
) -> None:
    key, ids, c, g = case
    bulk = allocate_bulk(key, ids, c, g)
    for t in range(c.shape[0]):
        a, d = bulk.allocated_wh[t], bulk.delivered_wh[t]
        gen, con = int(g[t].sum()), int(c[t].sum())
        assert (a >= 0).all()
        assert (a <= c[t]).all()
        assert int(a.sum()) + int(bulk.surplus_wh[t]) == gen
        assert int(a.sum()) <= min(gen, con)
        assert int(d.sum()) == int(a.sum())
        assert (d >= 0).all()
        assert (d <= g[t]).all()
        scalar = allocate_quarter_hour(key, ids, c[t].tolist(), g[t].tolist())
        assert list(scalar.allocated_wh) == a.tolist()
        assert list(scalar.delivered_wh) == d.tolist()
        if key.proportional and gen >= con:
            assert a.tolist() == c[t].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(0, 1_000), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
)
def test_apportion_is_exact_and_within_one_of_the_quota(total: int, weights: list[int]) -> None:
    parts = apportion(total, weights)
    assert sum(parts) == total
    for part, w in zip(parts, weights, strict=True):
        quota = Fraction(w * total, sum(weights))
        assert quota - 1 < part < quota + 1
        if w == 0:
            assert part == 0
    rows = apportion_rows(np.array([total], dtype=np.int64), np.array([weights], dtype=np.int64))
    assert rows[0].tolist() == parts


def _day_inputs(
    day: date, key: SharingKey, ids: tuple[str, ...], c: np.ndarray, g: np.ndarray
) -> SettlementInputs:
    start, end = local_day_bounds(day)
    community = Community(
        "prop",
        tuple(Membership(m) for m in ids),
        (KeyPeriod(start, key),),
        (Tariff(start, Decimal("0.15"), Decimal("0.35"), Decimal("0.07")),),
        Decimal("380"),
    )
    intervals = tuple(
        MemberInterval(m, start + timedelta(minutes=15 * t), int(c[t, i]), int(g[t, i]))
        for t in range(c.shape[0])
        for i, m in enumerate(ids)
    )
    return SettlementInputs(community, start, end, intervals)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.sampled_from([date(2026, 3, 29), date(2026, 10, 25), date(2026, 7, 1)]),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 5),
    data=st.data(),
)
def test_a_settled_day_conserves_energy_in_every_quarter_hour(
    day: date, seed: int, n: int, data: st.DataObject
) -> None:
    ids = tuple(f"m{i}" for i in range(n))
    key = data.draw(keys(ids))
    rows = quarter_hours_in_day(day)
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 400, (rows, n)) * (rng.random((rows, n)) > 0.2)
    g = rng.integers(0, 600, (rows, n)) * (rng.random((rows, n)) > 0.5)
    lines = settle_lines(_day_inputs(day, key, ids, c, g))
    assert len(lines) == rows * n
    assert rows in (92, 96, 100)
    by_qh: dict[datetime, list[StatementLine]] = {}
    for line in lines:
        by_qh.setdefault(line.qh_start, []).append(line)
        assert 0 <= line.received_wh <= line.consumption_wh
        assert line.residual_wh == line.consumption_wh - line.received_wh
        assert 0 <= line.surplus_wh <= line.generation_wh
    assert len(by_qh) == rows
    for group in by_qh.values():
        generation = sum(ln.generation_wh for ln in group)
        received = sum(ln.received_wh for ln in group)
        assert received + sum(ln.surplus_wh for ln in group) == generation
        assert sum(ln.delivered_wh for ln in group) == received


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3_000_000_000),
            st.lists(st.integers(0, 2_000_000_000), min_size=3, max_size=3),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_large_values_take_the_int64_remainder_key_and_stay_exact(
    rows: list[tuple[int, list[int]]],
) -> None:
    """Weight sums above 2^31 / n fold remainder and column into an int64 key instead."""
    rows = [(t, w) for t, w in rows if sum(w) > 0]
    if not rows:
        return
    totals = np.array([t for t, _ in rows], dtype=np.int64)
    weights = np.array([w for _, w in rows], dtype=np.int64)
    got = apportion_rows(totals, weights)
    for r, (t, w) in enumerate(rows):
        assert got[r].tolist() == apportion(t, w)
