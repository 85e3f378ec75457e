"""Exact allocation of community generation to members, per quarter-hour.

Two paths compute the same numbers:

* :func:`allocate_quarter_hour` — one quarter-hour on Python ints; it is written to be read
  next to docs/domain.md §2 and is what a statement's explanation is built from;
* :func:`allocate_bulk` — many quarter-hours at once on ``int64`` arrays of shape
  ``(quarter-hours, members)``; this is how a community-year is settled.

The rules, in whole Wh (remainders by :mod:`vpp.settlement.apportion`):

* **proportional keys** (AT dynamic, DE §42b proportional): if ``G ≥ ΣC`` every member gets
  ``C_i``; otherwise ``G`` is apportioned by weights ``C_i``. So ``A_i ≤ C_i`` and
  ``Σ A = min(G, ΣC)``.
* **share keys** (AT static, DE constant, DE contract): ``G`` is apportioned by the shares
  (the unassigned rest ``1 − Σk`` is one more weight whose part is surplus), then
  ``A_i = min(C_i, share_i)``.
* **re-offer** (contract key option): what is left, ``G − Σ A``, is offered again to the
  members that still have unmet demand and a non-zero share, by their shares, capped at the
  unmet demand; repeated until nothing is left or nothing moves. Exactly, every member that
  is not capped ends with the same multiple ``μ`` of its share: ``A_i = min(C_i, w_i·μ)``
  with ``Σ A = G`` (or every member with a share capped). So the rounds are run on exact
  comparisons (``C_i·W ≤ w_i·R`` in integers: who is capped), and the whole Wh are taken
  **once, at the end**: the capped members get ``C_i``, the others
  ``apportion(R, w)`` of the rest ``R``. Rounding in every round instead (each round's
  offer apportioned to whole Wh) drifts from the exact allocation by more than 1 Wh.
* **producer side** (every key): ``Σ A`` is delivered by the producers in proportion to what
  each fed in, ``delivered_j = apportion(ΣA, G_j)``; the rest of ``G_j`` is the producer's
  surplus (AT dynamic: ``G_j·min(1, ΣC/G)`` and ``G_j·max(0, 1 − ΣC/G)``).

Invariants, exactly, for every quarter-hour: ``0 ≤ A_i ≤ C_i``,
``Σ A_i + S = G``, ``Σ delivered_j = Σ A_i``, ``0 ≤ delivered_j ≤ G_j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vpp.settlement.apportion import Int64Array, apportion, apportion_rows
from vpp.settlement.errors import SettlementInputError
from vpp.settlement.keys import SharingKey

#: Elements per block of the bulk path: 1 MiB per int64 temporary, so blocks stay in cache.
_BLOCK_ELEMENTS = 1 << 17
#: Products ``weight · total`` must stay below this to be exact in int64.
_INT64_SAFE = 1 << 62


@dataclass(frozen=True, slots=True)
class QuarterHourAllocation:
    """Allocation of one quarter-hour, lists in member order (Wh)."""

    allocated_wh: tuple[int, ...]
    delivered_wh: tuple[int, ...]
    surplus_wh: int


@dataclass(frozen=True, slots=True)
class BulkAllocation:
    """Allocation of many quarter-hours: arrays ``(T, n)`` in member order, ``(T,)`` totals."""

    allocated_wh: Int64Array
    delivered_wh: Int64Array
    surplus_wh: Int64Array


def _share_weights(key: SharingKey, member_ids: Sequence[str]) -> tuple[list[int], int]:
    numerators, denominator = key.integer_shares(member_ids)
    return [*numerators, denominator - sum(numerators)], denominator


def allocate_quarter_hour(
    key: SharingKey,
    member_ids: Sequence[str],
    consumption_wh: Sequence[int],
    generation_wh: Sequence[int],
) -> QuarterHourAllocation:
    """Allocate one quarter-hour. ``member_ids`` sorted; values are whole non-negative Wh."""
    n = len(member_ids)
    g = sum(generation_wh)
    c_total = sum(consumption_wh)
    if key.proportional:
        allocated = list(consumption_wh) if g >= c_total else apportion(g, consumption_wh)
    elif key.reoffer:
        weights, _ = _share_weights(key, member_ids)
        allocated = _reoffer(consumption_wh, weights[:n], g)
    else:
        weights, _ = _share_weights(key, member_ids)
        shares = apportion(g, weights)[:n]
        allocated = [min(c, s) for c, s in zip(consumption_wh, shares, strict=True)]
    given = sum(allocated)
    delivered = apportion(given, generation_wh) if given else [0] * len(generation_wh)
    return QuarterHourAllocation(tuple(allocated), tuple(delivered), g - given)


def _reoffer(consumption_wh: Sequence[int], weights: Sequence[int], g: int) -> list[int]:
    """Static shares, then re-offer rounds until nothing moves; whole Wh taken once, at the
    end (see the module doc). ``weights``: the members' share numerators."""
    capped = [False] * len(weights)
    while True:
        rest = g - sum(c for c, cap in zip(consumption_wh, capped, strict=True) if cap)
        open_w = sum(w for w, cap in zip(weights, capped, strict=True) if w > 0 and not cap)
        if open_w == 0:
            break
        # capped at the exact level μ = rest / open_w: C_i ≤ w_i·μ
        new = [
            i
            for i, (c, w) in enumerate(zip(consumption_wh, weights, strict=True))
            if w > 0 and not capped[i] and c * open_w <= w * rest
        ]
        if not new:
            break
        for i in new:
            capped[i] = True
    result = [c if cap else 0 for c, cap in zip(consumption_wh, capped, strict=True)]
    if open_w:
        open_weights = [0 if cap else w for w, cap in zip(weights, capped, strict=True)]
        for i, x in enumerate(apportion(rest, open_weights)):
            result[i] += x
    return result


def allocate_bulk(
    key: SharingKey,
    member_ids: Sequence[str],
    consumption_wh: Int64Array,
    generation_wh: Int64Array,
) -> BulkAllocation:
    """Allocate every row (quarter-hour) of ``consumption_wh``/``generation_wh`` (T, n).

    Arrays are int64 Wh, columns in ``member_ids`` order (sorted ids: the tie rule). A
    negative value raises :class:`SettlementInputError` naming the member and the row; the
    full input validation (order, duplicates, membership) lives in
    :mod:`vpp.settlement.validate`.
    """
    c = np.ascontiguousarray(consumption_wh, dtype=np.int64)
    gen = np.ascontiguousarray(generation_wh, dtype=np.int64)
    rows, n = c.shape
    if gen.shape != (rows, n) or len(member_ids) != n:
        raise ValueError(
            f"shapes disagree: consumption {c.shape}, generation {gen.shape}, "
            f"{len(member_ids)} members"
        )
    # zeros_like writes every page once, in order: far cheaper first-touch page faults than
    # the scattered block writes below would cause on fresh memory
    allocated = np.zeros_like(c)
    delivered = np.zeros_like(gen)
    surplus = np.empty(rows, dtype=np.int64)
    weights: Int64Array | None = None
    if not key.proportional:
        w, _ = _share_weights(key, member_ids)
        weights = np.asarray(w, dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for lo in range(0, rows, step):
        hi = min(rows, lo + step)
        cb, gb, ab = c[lo:hi], gen[lo:hi], allocated[lo:hi]
        for name, block in (("consumption_wh", cb), ("generation_wh", gb)):
            if block.min(initial=0) < 0:
                row, col = np.argwhere(block < 0)[0]
                raise SettlementInputError(
                    f"negative energy {int(block[row, col])} Wh in row {lo + int(row)}",
                    member_id=member_ids[int(col)],
                    field=name,
                )
        g = gb.sum(axis=1)
        if weights is None:
            c_total = cb.sum(axis=1)
            _check_magnitude(int(c_total.max(initial=0)), g)
            # apportioning min(G, ΣC) by C gives exactly C where G ≥ ΣC
            given = np.minimum(g, c_total)
            apportion_rows(given, cb, c_total, out=ab, out_is_zero=True)
        else:
            # re-offer compares C_i·W with W up to the sum of the weights
            largest = weights.sum() if key.reoffer else weights.max(initial=0)
            _check_magnitude(int(largest), g)
            ab[...] = _share_rows(cb, g, weights, key.reoffer)
            given = ab.sum(axis=1)
        _producer_side(gb, g, given, delivered[lo:hi])
        surplus[lo:hi] = g - given
    return BulkAllocation(allocated, delivered, surplus)


def _producer_side(gb: Int64Array, g: Int64Array, given: Int64Array, out: Int64Array) -> None:
    """``out = apportion(Σ A, G_j)`` per row into zeroed ``out``; hard rows: producers only."""
    # out is all zeros: rows where all generation is used get G_j, rows where none is, 0
    np.copyto(out, gb, where=((given != 0) & (given == g))[:, None])
    hard = np.flatnonzero((given != 0) & (given != g))
    if hard.size:
        sub = gb[hard]
        producers = np.flatnonzero(sub.any(axis=0))
        out[np.ix_(hard, producers)] = apportion_rows(given[hard], sub[:, producers], g[hard])


def _check_magnitude(weight_max: int, g: Int64Array) -> None:
    """Every product ``weight · total`` below (the producer side's is at most ``G · G``)."""
    g_max = int(g.max(initial=0))
    if max(weight_max, g_max, 1) * max(g_max, 1) >= _INT64_SAFE:
        raise SettlementInputError(
            f"values too large for exact int64 settlement: weight {weight_max}, "
            f"generation {g_max} Wh in one quarter-hour",
            field="generation_wh",
        )


def _share_rows(c: Int64Array, g: Int64Array, weights: Int64Array, reoffer: bool) -> Int64Array:
    n = c.shape[1]
    if reoffer:
        return _reoffer_rows(c, g, weights[:n])
    w = np.broadcast_to(weights, (c.shape[0], n + 1))
    shares = apportion_rows(g, w, np.full(c.shape[0], int(weights.sum()), dtype=np.int64))
    out: Int64Array = np.minimum(c, shares[:, :n])
    return out


def _reoffer_rows(c: Int64Array, g: Int64Array, member_w: Int64Array) -> Int64Array:
    """Row-wise :func:`_reoffer`: who is capped, found on exact integer comparisons, then
    the whole Wh once (see the module doc)."""
    has_share = member_w > 0
    capped = np.zeros(c.shape, dtype=np.bool_)
    # C_i above G is never capped (w_i·μ ≤ R ≤ G): clipping keeps C·W inside int64
    clipped = np.minimum(c, (g + 1)[:, None])
    rows = np.arange(c.shape[0])
    while rows.size:
        cap = capped[rows]
        rest = g[rows] - np.where(cap, c[rows], 0).sum(axis=1)
        open_mask = has_share & ~cap
        open_w = np.where(open_mask, member_w, 0).sum(axis=1)
        new = open_mask & (clipped[rows] * open_w[:, None] <= member_w * rest[:, None])
        moved = new.any(axis=1)
        capped[rows] = cap | new
        rows = rows[moved]
    out: Int64Array = np.where(capped, c, 0)
    rest = g - out.sum(axis=1)
    open_w_all = np.where(has_share & ~capped, member_w, 0)
    open_sum = open_w_all.sum(axis=1)
    rest = np.where(open_sum > 0, rest, 0)
    out += apportion_rows(rest, open_w_all, open_sum)
    return out
