"""Balances from arrays equal balances from statement lines, to the cent and the Wh."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from vpp.metering.quality import IntervalQuality
from vpp.quarterhours import local_day_bounds, qh_index
from vpp.settlement.allocate import allocate_bulk
from vpp.settlement.balances import COMMUNITY, BalancePeriod, balances
from vpp.settlement.bulk_balances import bulk_balances
from vpp.settlement.keys import contract_key
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
