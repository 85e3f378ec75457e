"""A long period settled exactly: nine local days across the 100-quarter-hour day and a month
boundary, a member joining late, a 60 % participation, a tariff change and a key change. Every
quarter-hour of :func:`settle_lines` equals the quarter-hour allocation on Python ints
(:func:`allocate_quarter_hour`, the reference written next to the rules), and a statement of the
whole period equals the sum of its lines, to the Wh and the cent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from kernel.quarterhours import BERLIN, local_day_bounds
from vpp.metering.quality import IntervalQuality
from vpp.settlement.allocate import allocate_quarter_hour
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
from vpp.settlement.runs import DayInputs, RunKind, next_version
from vpp.settlement.settle import settle_lines
from vpp.settlement.statement import StatementLine, round_eur

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


def _with_key_change(inputs: SettlementInputs) -> SettlementInputs:
    community = inputs.community
    later = KeyPeriod(inputs.period_start + 400 * QH, dynamic_key())
    return replace(inputs, community=replace(community, keys=(*community.keys, later)))


def test_every_quarter_hour_equals_the_reference_allocation() -> None:
    inputs = _with_key_change(_inputs())
    community = inputs.community
    lines = settle_lines(inputs)
    by_qh: dict[datetime, dict[str, StatementLine]] = defaultdict(dict)
    for line in lines:
        by_qh[line.qh_start][line.member_id] = line
    measured = {(iv.qh_start, iv.member_id): iv for iv in inputs.intervals}
    assert len(by_qh) == (inputs.period_end - inputs.period_start) // QH
    for qh, group in by_qh.items():
        key = [p.key for p in community.keys if p.valid_from <= qh][-1]
        # every member in id order; one outside its membership (c before row 300) has no line
        # and takes part with nothing
        ids = community.member_ids
        pct = {m: community.membership(m).participation_pct for m in ids}
        absent = MemberInterval("", qh, 0)
        c = [measured.get((qh, m), absent).consumption_wh * pct[m] // 100 for m in ids]
        g = [measured.get((qh, m), absent).generation_wh * pct[m] // 100 for m in ids]
        want = allocate_quarter_hour(key, ids, c, g)
        got = [group.get(m) for m in ids]
        assert [0 if ln is None else ln.consumption_wh for ln in got] == c
        assert [0 if ln is None else ln.received_wh for ln in got] == list(want.allocated_wh)
        assert [0 if ln is None else ln.delivered_wh for ln in got] == list(want.delivered_wh)
    assert "c" not in by_qh[inputs.period_start]
    assert "c" in by_qh[inputs.period_start + 300 * QH]


def test_a_statement_of_the_long_period_is_the_sum_of_its_lines() -> None:
    inputs = _inputs()
    lines = settle_lines(inputs)
    day = DayInputs(inputs, date(2026, 10, 24), inputs.period_end)
    new = next_version(day, RunKind.FINAL, None, BERLIN)
    assert new is not None
    assert new.details["quarter_hours"] == 9 * 96 + 4  # the 100-quarter-hour day inside
    for s in new.statements:
        mine = [ln for ln in lines if ln.member_id == s.member_id]
        assert s.consumption_wh == sum(ln.consumption_wh for ln in mine)
        assert s.grid_import_wh == sum(ln.residual_wh for ln in mine)
        assert s.grid_export_wh == sum(ln.surplus_wh for ln in mine)
        assert s.amount_eur == round_eur(sum((ln.net_eur for ln in mine), Decimal(0)))
        subs = sum(ln.quality is not IntervalQuality.L1 for ln in mine)
        assert sum(s.details["substitute_quarter_hours"].values()) == subs
    c = next(s for s in new.statements if s.member_id == "c")
    assert c.details["quarter_hours"] == 9 * 96 + 4 - 300


def test_values_outside_the_membership_and_a_period_before_any_key_are_refused() -> None:
    inputs = _inputs()
    start = inputs.period_start
    early = MemberInterval("c", start + 3 * QH, 5)
    ivs = tuple(sorted((*inputs.intervals, early), key=lambda iv: (iv.qh_start, iv.member_id)))
    with pytest.raises(SettlementInputError, match="not in the community") as err:
        settle_lines(replace(inputs, intervals=ivs))
    assert err.value.member_id == "c"
    community = inputs.community
    late_key = replace(community, keys=(replace(community.keys[0], valid_from=start + QH),))
    with pytest.raises(KeyConfigError, match="no key in force"):
        settle_lines(replace(inputs, community=late_key))
