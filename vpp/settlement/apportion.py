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
) -> Int64Array:
    """Row-wise :func:`apportion`: ``total_wh`` shape ``(T,)``, ``weights`` shape ``(T, n)``.

    Rows whose weights sum to zero must have a zero total; they get all zeros. The products
    ``w · T`` must fit in int64 (callers check their magnitudes). Rows whose total is zero or
    equal to the weight sum are exact without any division (all zeros, or the weights
    themselves); only the other rows are apportioned. ``out`` receives the result if given.
    """
    if weight_sum is None:
        weight_sum = weights.sum(axis=1)
    if out is None:
        out = np.empty(weights.shape, dtype=np.int64)
    trivial = (total_wh == 0) | (total_wh == weight_sum)
    if not trivial.any():
        out[...] = _apportion(total_wh, weights, weight_sum)
        return out
    np.multiply(weights, (total_wh != 0)[:, None], out=out)
    hard = np.flatnonzero(~trivial)
    if hard.size:
        out[hard] = _apportion(total_wh[hard], weights[hard], weight_sum[hard])
    return out


def _apportion(total_wh: Int64Array, weights: Int64Array, weight_sum: Int64Array) -> Int64Array:
    """Largest remainder on rows with ``0 < total`` and ``weight_sum > 0``."""
    base, rem = np.divmod(weights * total_wh[:, None], weight_sum[:, None])
    left = total_wh - base.sum(axis=1)
    if not left.any():
        return base
    if int(weight_sum.max()) < 2**31:
        rem = rem.astype(np.int32)  # remainders are below the weight sum: sort half the bytes
    rows = np.flatnonzero(left > 0)
    if rows.size == base.shape[0]:
        base += _top_by_remainder(rem, left)
    else:
        base[rows] += _top_by_remainder(rem[rows], left[rows])
    return base


def _top_by_remainder(rem: npt.NDArray[np.integer], left: Int64Array) -> BoolArray:
    """True for the ``left[r]`` largest remainders of each row (ties: lower column first)."""
    n = rem.shape[1]
    ordered = np.sort(rem, axis=1)
    # the left-th largest remainder of each row: the threshold of the +1 group
    threshold = np.take_along_axis(ordered, (n - left)[:, None], axis=1)
    above = rem > threshold
    need = left - above.sum(axis=1)
    at = rem == threshold
    # ties at the threshold: only rows with more candidates than places need the id order
    tied = np.flatnonzero(at.sum(axis=1) > need)
    if tied.size:
        order = np.cumsum(at[tied], axis=1, dtype=np.int32)
        at[tied] &= order <= need[tied, None]
    above |= at
    return above
