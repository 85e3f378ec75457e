"""Balances from arrays equal balances from statement lines, to the cent and the Wh."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from kernel.quarterhours import local_day_bounds, qh_index
from vpp.metering.quality import IntervalQuality
from vpp.settlement.allocate import allocate_bulk
from vpp.settlement.balances import COMMUNITY, BalancePeriod, balances
from vpp.settlement.bulk import settle_arrays
from vpp.settlement.bulk_balances import bulk_balances
from vpp.settlement.errors import KeyConfigError, SettlementInputError
from vpp.settlement.keys import contract_key, dynamic_key
from vpp.settlement.model import (
    Community,
    KeyPeriod,
    MemberInterval,
    Membership,
    SettlementInputs,
    Tariff,
)
from vpp.settlement.runs import settle
from vpp.settlement.settle import metered_arrays

QH = timedelta(minutes=15)


def _inputs(*, everyone_always: bool = False) -> SettlementInputs:
    """9 local days across the 100-quarter-hour day and a month boundary, tariff change."""
    start = local_day_bounds(date(2026, 10, 24))[0]
    end = local_day_bounds(date(2026, 11, 1))[1]
    rows = int((end - start) / QH)
    ids = ("a", "b", "c", "pv")
    key = contract_key({"a": "0.3", "b": "0.3", "c": "0.2"}, reoffer=True)
    joined = start if everyone_always else start + 300 * QH
    community = Community(
        "eeg-bulk",
        (
            Membership("a"),
            Membership("b", participation_pct=60),
            Membership("c", joined=joined),
            Membership("pv"),
        ),
        (KeyPeriod(start, key),),
        (
            Tariff(start, Decimal("0.1234"), Decimal("0.3517"), Decimal("0.0811"), Decimal("0.02")),
            Tariff(
                start + 500 * QH,
                Decimal("0.1301"),
                Decimal("0.3333"),
                Decimal("0.0777"),
                Decimal("0.015"),
                Decimal("0.0919"),
            ),
        ),
        Decimal("377.5"),
    )
    rng = np.random.default_rng(7)
    intervals = []
    for t in range(rows):
        ts = start + t * QH
        for m in ids:
            if m == "c" and ts < joined:
                continue
            gen = int(rng.integers(0, 900)) if m == "pv" and t % 96 > 30 else 0
            substitute = rng.random() < 0.05 and not everyone_always
            quality = IntervalQuality.L2 if substitute else IntervalQuality.L1
            intervals.append(
                MemberInterval(
                    m, ts, int(rng.integers(0, 400)), gen, int(rng.integers(0, 30)), quality
                )
            )
    return SettlementInputs(community, start, end, tuple(intervals))


@pytest.mark.parametrize("period", [BalancePeriod.DAY, BalancePeriod.MONTH])
def test_bulk_balances_equal_statement_balances(period: BalancePeriod) -> None:
    inputs = _inputs()
    arrays = metered_arrays(inputs)
    key = inputs.community.keys[0].key
    allocation = allocate_bulk(key, arrays.member_ids, arrays.consumption_wh, arrays.generation_wh)
    got = bulk_balances(
        first_index=qh_index(inputs.period_start),
        member_ids=arrays.member_ids,
        consumption_wh=arrays.consumption_wh,
        generation_wh=arrays.generation_wh,
        own_generation_used_wh=arrays.own_generation_used_wh,
        allocation=allocation,
        tariffs=inputs.community.tariffs,
        emission_factor_g_per_kwh=inputs.community.emission_factor_g_per_kwh,
        substitute=arrays.quality_code > 0,
        active=arrays.active,
        period=period,
    )
    want = balances(settle(inputs).lines, period)
    assert got == want
    if period is BalancePeriod.MONTH:
        assert [(b.member_id, b.first_day) for b in got][-1] == (COMMUNITY, date(2026, 11, 1))
    else:
        dst = [b for b in got if b.first_day == date(2026, 10, 25) and b.member_id == "a"]
        assert dst[0].quarter_hours == 100
    assert any(b.substitute_quarter_hours for b in got)


def test_bulk_balances_without_masks_treat_everyone_as_present() -> None:
    inputs = _inputs(everyone_always=True)
    arrays = metered_arrays(inputs)
    allocation = allocate_bulk(
        inputs.community.keys[0].key,
        arrays.member_ids,
        arrays.consumption_wh,
        arrays.generation_wh,
    )
    got = bulk_balances(
        first_index=qh_index(inputs.period_start),
        member_ids=arrays.member_ids,
        consumption_wh=arrays.consumption_wh,
        generation_wh=arrays.generation_wh,
        own_generation_used_wh=arrays.own_generation_used_wh,
        allocation=allocation,
        tariffs=inputs.community.tariffs,
        emission_factor_g_per_kwh=inputs.community.emission_factor_g_per_kwh,
    )
    assert got == balances(settle(inputs).lines)
    assert all(b.substitute_quarter_hours == 0 for b in got)


def _measured(inputs: SettlementInputs) -> tuple[np.ndarray, np.ndarray]:
    """The intervals as unscaled measured arrays, as the runtime reads them from the store."""
    ids = inputs.community.member_ids
    first = qh_index(inputs.period_start)
    rows = qh_index(inputs.period_end) - first
    c = np.zeros((rows, len(ids)), dtype=np.int64)
    g = np.zeros((rows, len(ids)), dtype=np.int64)
    for iv in inputs.intervals:
        c[qh_index(iv.qh_start) - first, ids.index(iv.member_id)] = iv.consumption_wh
        g[qh_index(iv.qh_start) - first, ids.index(iv.member_id)] = iv.generation_wh
    return c, g


def test_settle_arrays_equals_the_statement_path_with_joins_participation_and_key_change() -> None:
    base = _inputs()
    start = base.period_start
    community = replace(
        base.community,
        keys=(*base.community.keys, KeyPeriod(start + 400 * QH, dynamic_key())),
    )
    inputs = replace(base, community=community)
    c, g = _measured(inputs)
    first = qh_index(inputs.period_start)
    settled = settle_arrays(community, first, community.member_ids, c, g)
    lines = settle(inputs).lines
    for line in lines:
        row, col = qh_index(line.qh_start) - first, community.member_ids.index(line.member_id)
        assert settled.active[row, col]
        assert settled.consumption_wh[row, col] == line.consumption_wh
        assert settled.allocation.allocated_wh[row, col] == line.received_wh
        assert settled.allocation.delivered_wh[row, col] == line.delivered_wh
    assert int(settled.active.sum()) == len(lines)
    monthly = bulk_balances(
        first_index=first,
        member_ids=settled.member_ids,
        consumption_wh=settled.consumption_wh,
        generation_wh=settled.generation_wh,
        allocation=settled.allocation,
        tariffs=community.tariffs,
        emission_factor_g_per_kwh=community.emission_factor_g_per_kwh,
        active=settled.active,
    )
    want = balances(
        replace(ln, own_generation_used_wh=0, quality=IntervalQuality.L1) for ln in lines
    )
    assert monthly == want


def test_settle_arrays_refuses_values_outside_membership_and_misordered_columns() -> None:
    inputs = _inputs()
    community = inputs.community
    c, g = _measured(inputs)
    first = qh_index(inputs.period_start)
    start = inputs.period_start
    c[3, community.member_ids.index("c")] = 5  # c joins at row 300
    with pytest.raises(SettlementInputError, match="not in the community") as err:
        settle_arrays(community, first, community.member_ids, c, g)
    assert (err.value.member_id, err.value.field) == ("c", "consumption_wh")
    assert err.value.interval == inputs.period_start + 3 * QH
    with pytest.raises(SettlementInputError, match="sorted id order"):
        settle_arrays(community, first, tuple(reversed(community.member_ids)), c, g)
    c[3, community.member_ids.index("c")] = 0
    late_key = replace(community, keys=(replace(community.keys[0], valid_from=start + QH),))
    with pytest.raises(KeyConfigError, match="no key in force"):
        settle_arrays(late_key, first, community.member_ids, c, g)
    settle_arrays(community, first, community.member_ids, c, g)
