"""Largest-remainder apportionment: split a whole number of Wh by weights, exactly.

Every key ends in the same step: a total of whole Wh (the community generation, or what is
left of it) is split among members in proportion to integer weights. The exact quota
``w_i · T / W`` is rarely whole, so:

1. each member first gets ``floor(w_i · T / W)``;
2. the ``L = T − Σ floor`` Wh left over (always fewer than the number of members with a
   non-zero remainder) go one each to the members with the **largest remainders**
   ``(w_i · T) mod W``;
3. ties between equal remainders go to the member that comes first in member-id order (the
   column order of the arrays, which callers sort by member id).

So ``Σ result = T`` exactly, ``floor(quota) ≤ result_i ≤ ceil(quota)``, and a member with zero
weight gets nothing. This is the one remainder rule of the settlement; nothing is ever lost.

Two implementations of the same rule: :func:`apportion` on Python ints (explanations, tests) and
:func:`apportion_rows` on ``int64`` arrays, one apportionment per row (bulk settlement).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def apportion(total_wh: int, weights: Sequence[int]) -> list[int]:
    """Split ``total_wh`` by ``weights`` with the largest-remainder rule (see module doc).

    ``weights`` are non-negative integers in member-id order; if they are all zero the total
    cannot be split and a ``ValueError`` is raised (callers treat that case before).
    """
    if total_wh < 0:
        raise ValueError(f"total_wh must be ≥ 0, got {total_wh}")
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must be ≥ 0, got {list(weights)}")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total_wh == 0:
            return [0] * len(weights)
        raise ValueError("cannot apportion a positive total over all-zero weights")
    base = [w * total_wh // weight_sum for w in weights]
    rem = [w * total_wh - b * weight_sum for w, b in zip(weights, base, strict=True)]
    left = total_wh - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-rem[i], i))
    for i in order[:left]:
        base[i] += 1
    return base


def apportion_rows(
    total_wh: Int64Array,
    weights: Int64Array,
    weight_sum: Int64Array | None = None,
    out: Int64Array | None = None,
    *,
    out_is_zero: bool = False,
) -> Int64Array:
    """Row-wise :func:`apportion`: ``total_wh`` shape ``(T,)``, ``weights`` shape ``(T, n)``.

    Rows whose weights sum to zero must have a zero total; they get all zeros. The products
    ``w · T`` must fit in int64 (callers check their magnitudes). Rows whose total is zero or
    equal to the weight sum are exact without any division (all zeros, or the weights
    themselves); only the other rows are apportioned. ``out`` receives the result if given;
    ``out_is_zero`` says it is all zeros already (then only non-zero rows are written).
    """
    if weight_sum is None:
        weight_sum = weights.sum(axis=1)
    if out is None:
        out = np.zeros(weights.shape, dtype=np.int64)
        out_is_zero = True
    trivial = (total_wh == 0) | (total_wh == weight_sum)
    if not trivial.any():
        return _apportion(total_wh, weights, weight_sum, out)
    if out_is_zero:
        np.copyto(out, weights, where=((total_wh != 0) & trivial)[:, None])
    else:
        np.multiply(weights, (total_wh != 0)[:, None], out=out)
    hard = np.flatnonzero(~trivial)
    if hard.size:
        out[hard] = _apportion(total_wh[hard], weights[hard], weight_sum[hard])
    return out


def _apportion(
    total_wh: Int64Array,
    weights: Int64Array,
    weight_sum: Int64Array,
    out: Int64Array | None = None,
) -> Int64Array:
    """Largest remainder on rows with ``0 < total`` and ``weight_sum > 0`` (into ``out``)."""
    divisor = weight_sum[:, None]
    num = np.multiply(weights, total_wh[:, None])
    base: Int64Array = np.floor_divide(num, divisor, out=out)
    rem = np.subtract(num, np.multiply(base, divisor), out=num)  # in place: num is spent
    left = total_wh - base.sum(axis=1)
    if not left.any():
        return base
    rows = np.flatnonzero(left > 0)
    if rows.size == base.shape[0]:
        base += _top_by_remainder(rem, left, weight_sum)
    else:
        base[rows] += _top_by_remainder(rem[rows], left[rows], weight_sum[rows])
    return base


def _top_by_remainder(rem: Int64Array, left: Int64Array, weight_sum: Int64Array) -> BoolArray:
    """True for the ``left[r]`` largest remainders of each row (ties: lower column first).

    Remainder and column are folded into one key, ``rem · n + (n − 1 − column)``: distinct
    within a row, larger for the larger remainder and, among equal remainders, for the lower
    column. The ``left``-th largest key of a row is then a threshold without ties. The key is
    ``int32`` when it fits (it does for any community below ~2 MWh per quarter-hour and
    1,000 members), which halves the bytes the sort moves.
    """
    n = rem.shape[1]
    dtype = np.int32 if int(weight_sum.max()) * n < 2**31 else np.int64
    key: npt.NDArray[np.signedinteger[Any]] = rem.astype(dtype)
    np.multiply(key, n, out=key)
    np.add(key, np.arange(n - 1, -1, -1, dtype=dtype), out=key)
    ordered = np.sort(key, axis=1)
    threshold = np.take_along_axis(ordered, (n - left)[:, None], axis=1)
    bonus: BoolArray = key >= threshold
    return bonus
