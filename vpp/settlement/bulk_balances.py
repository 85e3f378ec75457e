"""Daily or monthly balances straight from the bulk arrays, with exact money.

The statement-line path (:mod:`vpp.settlement.balances`) builds one object per member and
quarter-hour; for a community-year (35 million member-intervals) that is too many. Here the
arrays are summed over *segments* — stretches of quarter-hours inside one balance period and one
tariff — with ``np.add.reduceat`` on int64 Wh, and money is computed per segment as
``Σ Wh × price`` in ``Decimal``. Because a price is constant inside a segment, this is the
exact sum of the per-quarter-hour amounts, and rounding follows the one rule
(:func:`vpp.settlement.statement.round_eur` on each line item). The result equals what the
statement-line path gives for the same inputs (the tests check it), as :class:`Balance` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from kernel.quarterhours import BERLIN, local_day_of, qh_index, qh_start
from vpp.settlement.allocate import BulkAllocation
from vpp.settlement.apportion import Int64Array
from vpp.settlement.balances import COMMUNITY, Balance, BalancePeriod
from vpp.settlement.model import Tariff
from vpp.settlement.statement import ENERGY_FIELDS, MONEY_FIELDS, energy_cost_eur, round_eur


def _period_key(index: int, period: BalancePeriod, tz: ZoneInfo) -> date:
    day = local_day_of(qh_start(index), tz)
    return day if period is BalancePeriod.DAY else day.replace(day=1)


def _segments(
    first_index: int, rows: int, tariffs: Sequence[Tariff], period: BalancePeriod, tz: ZoneInfo
) -> tuple[list[int], list[date], list[Tariff]]:
    """Row starts of segments, each segment's period and tariff."""
    starts: list[int] = []
    periods: list[date] = []
    chosen: list[Tariff] = []
    tariff_starts = [qh_index(t.valid_from) for t in tariffs]
    prev: tuple[date, int] | None = None
    for row in range(rows):
        index = first_index + row
        key = _period_key(index, period, tz)
        tariff_no = int(np.searchsorted(tariff_starts, index, side="right")) - 1
        if tariff_no < 0:
            raise ValueError(f"no tariff in force at {qh_start(index).isoformat()}")
        if prev != (key, tariff_no):
            starts.append(row)
            periods.append(key)
            chosen.append(tariffs[tariff_no])
            prev = (key, tariff_no)
    return starts, periods, chosen


def bulk_balances(
    *,
    first_index: int,
    member_ids: Sequence[str],
    consumption_wh: Int64Array,
    generation_wh: Int64Array,
    allocation: BulkAllocation,
    tariffs: Sequence[Tariff],
    emission_factor_g_per_kwh: Decimal,
    own_generation_used_wh: Int64Array | None = None,
    substitute: npt.NDArray[np.bool_] | None = None,
    active: npt.NDArray[np.bool_] | None = None,
    period: BalancePeriod = BalancePeriod.MONTH,
    tz: ZoneInfo = BERLIN,
) -> tuple[Balance, ...]:
    """Balances per member and for the community from arrays ``(quarter-hours, members)``.

    ``first_index`` is the quarter-hour index of row 0; ``substitute`` marks substitute values,
    ``active`` the member-quarter-hours that count (default: all).
    """
    rows, n = consumption_wh.shape
    starts, periods, seg_tariffs = _segments(first_index, rows, tariffs, period, tz)
    measured: dict[str, Int64Array] = {
        "consumption_wh": consumption_wh,
        "generation_wh": generation_wh,
        "received_wh": allocation.allocated_wh,
        "delivered_wh": allocation.delivered_wh,
    }
    if own_generation_used_wh is not None:
        measured["own_generation_used_wh"] = own_generation_used_wh
    # segment sums of the measured arrays; residual and surplus follow from them exactly
    seg_sums = {f: np.add.reduceat(a, starts, axis=0) for f, a in measured.items()}
    seg_sums.setdefault("own_generation_used_wh", np.zeros_like(seg_sums["consumption_wh"]))
    seg_sums["residual_wh"] = seg_sums["consumption_wh"] - seg_sums["received_wh"]
    seg_sums["surplus_wh"] = seg_sums["generation_wh"] - seg_sums["delivered_wh"]
    lengths = np.diff(np.append(starts, rows))
    if active is None:
        seg_active = np.repeat(lengths[:, None], n, axis=1)
        any_active = lengths
    else:
        seg_active = np.add.reduceat(active, starts, axis=0, dtype=np.int64)
        any_active = np.add.reduceat(active.any(axis=1), starts, dtype=np.int64)
    if substitute is None:
        seg_sub = np.zeros((len(starts), n), dtype=np.int64)
        any_sub = np.zeros(len(starts), dtype=np.int64)
    else:
        counted = substitute if active is None else substitute & active
        seg_sub = np.add.reduceat(counted, starts, axis=0, dtype=np.int64)
        any_sub = np.add.reduceat(counted.any(axis=1), starts, dtype=np.int64)
    order = sorted(set(periods))
    out: list[Balance] = []
    for key in order:
        segs = [s for s, p in enumerate(periods) if p == key]
        money_all = {f: Decimal(0) for f in MONEY_FIELDS}
        co2_all = Decimal(0)
        for col, member_id in enumerate(member_ids):
            qh = int(sum(seg_active[s, col] for s in segs))
            if qh == 0:
                continue
            energy = {f: int(sum(seg_sums[f][s, col] for s in segs)) for f in ENERGY_FIELDS}
            money = {f: Decimal(0) for f in MONEY_FIELDS}
            co2 = Decimal(0)
            for s in segs:
                e = {f: int(seg_sums[f][s, col]) for f in ENERGY_FIELDS}
                t = seg_tariffs[s]
                money["shared_cost_eur"] += energy_cost_eur(
                    e["received_wh"], t.community_price_eur_per_kwh
                )
                money["residual_cost_eur"] += energy_cost_eur(
                    e["residual_wh"], t.supplier_price_eur_per_kwh
                )
                money["network_fee_eur"] += energy_cost_eur(
                    e["received_wh"], t.network_fee_shared_eur_per_kwh
                ) + energy_cost_eur(e["residual_wh"], t.network_fee_residual_eur_per_kwh)
                money["shared_revenue_eur"] += energy_cost_eur(
                    e["delivered_wh"], t.community_price_eur_per_kwh
                )
                money["surplus_revenue_eur"] += energy_cost_eur(
                    e["surplus_wh"], t.feed_in_price_eur_per_kwh
                )
                co2 += energy_cost_eur(e["received_wh"], emission_factor_g_per_kwh)
            subs = int(sum(seg_sub[s, col] for s in segs))
            out.append(_balance(member_id, period, key, qh, subs, energy, money, co2))
            for f in MONEY_FIELDS:
                money_all[f] += money[f]
            co2_all += co2
        com_energy = {f: int(sum(int(seg_sums[f][s].sum()) for s in segs)) for f in ENERGY_FIELDS}
        qh_all = int(sum(any_active[s] for s in segs))
        subs_all = int(sum(any_sub[s] for s in segs))
        out.append(
            _balance(COMMUNITY, period, key, qh_all, subs_all, com_energy, money_all, co2_all)
        )
    return tuple(out)


def _balance(
    member_id: str,
    period: BalancePeriod,
    first_day: date,
    quarter_hours: int,
    substitute_quarter_hours: int,
    energy: dict[str, int],
    money_exact: dict[str, Decimal],
    co2_g: Decimal,
) -> Balance:
    net = (
        money_exact["shared_cost_eur"]
        + money_exact["residual_cost_eur"]
        + money_exact["network_fee_eur"]
        - money_exact["shared_revenue_eur"]
        - money_exact["surplus_revenue_eur"]
    )
    return Balance(
        member_id=member_id,
        period=period,
        first_day=first_day,
        quarter_hours=quarter_hours,
        substitute_quarter_hours=substitute_quarter_hours,
        energy_wh=energy,
        money_eur={f: round_eur(v) for f, v in money_exact.items()},
        net_eur=round_eur(net),
        co2_avoided_g=co2_g,
    )
