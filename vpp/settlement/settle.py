"""From validated inputs to statement lines: arrays in the middle, explanations at the ends.

Steps:

1. validate (nothing is computed from bad input);
2. lay the intervals out as ``int64`` arrays ``(quarter-hours, members)``, members in sorted-id
   order, and scale each member's values by its participation factor:
   ``scaled = measured × pct // 100`` — rounded *down* to whole Wh, so that the parts a member
   brings into its (up to five) communities never add up to more than was measured;
3. allocate each stretch of quarter-hours with the key in force (a key change splits the period
   at its ``valid_from``): :func:`allocate_schedule`, on the exact array path
   :func:`vpp.settlement.allocate.allocate_bulk`;
4. build one :class:`StatementLine` per active member and quarter-hour with the tariff in force.

Members outside their membership window have no lines and take part in no allocation.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kernel.quarterhours import qh_index, qh_start
from vpp.metering.quality import IntervalQuality
from vpp.settlement.allocate import BulkAllocation, allocate_bulk
from vpp.settlement.apportion import Int64Array
from vpp.settlement.errors import KeyConfigError
from vpp.settlement.model import KeyPeriod, SettlementInputs, Tariff
from vpp.settlement.statement import StatementLine, build_line
from vpp.settlement.validate import validate_inputs

_QUALITY_CODE = {IntervalQuality.L1: 0, IntervalQuality.L2: 1, IntervalQuality.L3: 2}
_QUALITY_OF = {v: k for k, v in _QUALITY_CODE.items()}


@dataclass(frozen=True, slots=True)
class MeteredArrays:
    """The period as arrays: rows are quarter-hours from ``first_index``, columns members."""

    first_index: int
    member_ids: tuple[str, ...]
    consumption_wh: Int64Array
    generation_wh: Int64Array
    own_generation_used_wh: Int64Array
    quality_code: Int64Array
    active: npt.NDArray[np.bool_]


def metered_arrays(inputs: SettlementInputs) -> MeteredArrays:
    """Validate and lay out the inputs (scaled by participation) as arrays."""
    by_member = validate_inputs(inputs)
    community = inputs.community
    ids = community.member_ids
    first, end = qh_index(inputs.period_start), qh_index(inputs.period_end)
    rows, n = end - first, len(ids)
    c = np.zeros((rows, n), dtype=np.int64)
    g = np.zeros((rows, n), dtype=np.int64)
    own = np.zeros((rows, n), dtype=np.int64)
    quality = np.zeros((rows, n), dtype=np.int64)
    active = np.zeros((rows, n), dtype=bool)
    for col, member_id in enumerate(ids):
        pct = community.membership(member_id).participation_pct
        for index, iv in by_member[member_id].items():
            row = index - first
            c[row, col] = iv.consumption_wh * pct // 100
            g[row, col] = iv.generation_wh * pct // 100
            own[row, col] = iv.own_generation_used_wh * pct // 100
            quality[row, col] = _QUALITY_CODE[iv.quality]
            active[row, col] = True
    return MeteredArrays(first, ids, c, g, own, quality, active)


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


def settle_lines(inputs: SettlementInputs) -> tuple[StatementLine, ...]:
    """Statement lines of the period, ordered by quarter-hour, then member id."""
    arrays = metered_arrays(inputs)
    community = inputs.community
    first = arrays.first_index
    rows = arrays.consumption_wh.shape[0]
    allocation = allocate_schedule(
        community.keys, first, arrays.member_ids, arrays.consumption_wh, arrays.generation_wh
    )
    received, delivered = allocation.allocated_wh, allocation.delivered_wh
    tariff_starts = [qh_index(t.valid_from) for t in community.tariffs]
    lines: list[StatementLine] = []
    for row in range(rows):
        index = first + row
        start = qh_start(index)
        tariff = _tariff_at(community.tariffs, tariff_starts, index)
        for col in np.flatnonzero(arrays.active[row]).tolist():
            lines.append(
                build_line(
                    member_id=arrays.member_ids[col],
                    qh_start=start,
                    quality=_QUALITY_OF[int(arrays.quality_code[row, col])],
                    consumption_wh=int(arrays.consumption_wh[row, col]),
                    generation_wh=int(arrays.generation_wh[row, col]),
                    own_generation_used_wh=int(arrays.own_generation_used_wh[row, col]),
                    received_wh=int(received[row, col]),
                    delivered_wh=int(delivered[row, col]),
                    tariff=tariff,
                    emission_factor_g_per_kwh=community.emission_factor_g_per_kwh,
                )
            )
    return tuple(lines)


def _tariff_at(tariffs: tuple[Tariff, ...], starts: list[int], index: int) -> Tariff:
    return tariffs[bisect.bisect_right(starts, index) - 1]
