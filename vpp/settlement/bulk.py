"""Settle a community from arrays: the entry point for a month or a year of a large community.

The runtime reads quarter-hour intervals from the store as two ``int64`` arrays
``(quarter-hours, members)`` — measured consumption and generation at the grid points, columns
in sorted member-id order — and calls :func:`settle_arrays`. It applies what the statement path
applies (:mod:`vpp.settlement.settle`): membership windows (a value outside a member's window is
an error, a missing one is zero), participation factors (``× pct // 100``), and the key in force
for each stretch of quarter-hours. The result feeds :func:`vpp.settlement.bulk_balances
.bulk_balances` for daily and monthly balances with exact money.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kernel.quarterhours import qh_index, qh_start
from vpp.settlement.allocate import BulkAllocation, allocate_bulk
from vpp.settlement.apportion import Int64Array
from vpp.settlement.errors import KeyConfigError, SettlementInputError
from vpp.settlement.model import Community, KeyPeriod
from vpp.settlement.validate import validate_community


@dataclass(frozen=True, slots=True)
class SettledArrays:
    """Participating (scaled) energy, who was a member when, and the allocation."""

    first_index: int
    member_ids: tuple[str, ...]
    consumption_wh: Int64Array
    generation_wh: Int64Array
    active: npt.NDArray[np.bool_]
    allocation: BulkAllocation


def key_segments(
    keys: Sequence[KeyPeriod], first_index: int, rows: int
) -> list[tuple[int, int, KeyPeriod]]:
    """Row ranges ``[lo, hi)`` of the period and the key period in force in each."""
    starts = [qh_index(p.valid_from) - first_index for p in keys]
    segments = []
    for i, period in enumerate(keys):
        lo = max(0, starts[i])
        hi = rows if i + 1 == len(keys) else min(rows, starts[i + 1])
        if lo < hi:
            segments.append((lo, hi, period))
    if not segments or segments[0][0] != 0:
        raise KeyConfigError(
            "no key in force at the start of the period",
            interval=qh_start(first_index),
            field="keys",
        )
    return segments


def allocate_schedule(
    keys: Sequence[KeyPeriod],
    first_index: int,
    member_ids: Sequence[str],
    consumption_wh: Int64Array,
    generation_wh: Int64Array,
) -> BulkAllocation:
    """:func:`allocate_bulk` with the key in force for each stretch of quarter-hours."""
    parts = [
        allocate_bulk(period.key, member_ids, consumption_wh[lo:hi], generation_wh[lo:hi])
        for lo, hi, period in key_segments(keys, first_index, consumption_wh.shape[0])
    ]
    if len(parts) == 1:
        return parts[0]
    return BulkAllocation(
        np.concatenate([p.allocated_wh for p in parts]),
        np.concatenate([p.delivered_wh for p in parts]),
        np.concatenate([p.surplus_wh for p in parts]),
    )


def membership_mask(community: Community, first_index: int, rows: int) -> npt.NDArray[np.bool_]:
    """``(rows, members)``: True where the member belongs to the community."""
    ids = community.member_ids
    active = np.zeros((rows, len(ids)), dtype=bool)
    for col, member_id in enumerate(ids):
        m = community.membership(member_id)
        lo = 0 if m.joined is None else max(0, qh_index(m.joined) - first_index)
        hi = rows if m.left is None else min(rows, qh_index(m.left) - first_index)
        if lo < hi:
            active[lo:hi, col] = True
    return active


def settle_arrays(
    community: Community,
    first_index: int,
    member_ids: Sequence[str],
    consumption_wh: Int64Array,
    generation_wh: Int64Array,
) -> SettledArrays:
    """Settle measured arrays of ``community`` from quarter-hour ``first_index`` on."""
    validate_community(community)
    ids = community.member_ids
    if tuple(member_ids) != ids:
        missing = sorted(set(ids) ^ set(member_ids))
        raise SettlementInputError(
            "array columns must be the community's members in sorted id order"
            + (f"; not in both: {missing}" if missing else "; order differs"),
            member_id=missing[0] if missing else None,
            field="member_ids",
        )
    rows = consumption_wh.shape[0]
    if consumption_wh.shape != (rows, len(ids)) or generation_wh.shape != (rows, len(ids)):
        raise SettlementInputError(
            f"arrays must be (quarter-hours, {len(ids)} members); got "
            f"{consumption_wh.shape} and {generation_wh.shape}",
            field="consumption_wh",
        )
    active = membership_mask(community, first_index, rows)
    if not active.all():
        for name, values in (("consumption_wh", consumption_wh), ("generation_wh", generation_wh)):
            outside = np.argwhere((values != 0) & ~active)
            if outside.size:
                row, col = (int(x) for x in outside[0])
                raise SettlementInputError(
                    "member is not in the community in this interval",
                    member_id=ids[col],
                    interval=qh_start(first_index + row),
                    field=name,
                )
    pct = np.array([community.membership(m).participation_pct for m in ids], dtype=np.int64)
    if (pct != 100).any():
        consumption_wh = consumption_wh * pct // 100
        generation_wh = generation_wh * pct // 100
    allocation = allocate_schedule(community.keys, first_index, ids, consumption_wh, generation_wh)
    return SettledArrays(first_index, ids, consumption_wh, generation_wh, active, allocation)
