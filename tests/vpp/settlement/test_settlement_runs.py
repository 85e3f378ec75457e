"""Statements, money, balances, CSV, versioned runs and bad input, on small hand-checked cases."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from kernel.quarterhours import local_day_bounds
from vpp.metering.intervals import register_intervals
from vpp.metering.member import member_intervals
from vpp.metering.quality import IntervalQuality
from vpp.metering.registers import RegisterReading
from vpp.settlement.balances import COMMUNITY, BalancePeriod, balance_changes, balances
from vpp.settlement.csv_export import (
    balances_csv,
    lines_csv,
    write_changes_csv,
    write_lines_csv,
)
from vpp.settlement.errors import KeyConfigError, SettlementInputError
from vpp.settlement.keys import SharingKey, dynamic_key, static_key
from vpp.settlement.mieterstrom import check_mieterstrom_price, split_sum_meter
from vpp.settlement.model import (
    Community,
    KeyPeriod,
    MemberInterval,
    Membership,
    SettlementInputs,
    Tariff,
)
from vpp.settlement.runs import SettlementLedger, restate, settle
from vpp.settlement.statement import round_eur
from vpp.settlement.validate import validate_participation

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
QH = timedelta(minutes=15)
TARIFF = Tariff(
    T0,
    community_price_eur_per_kwh=Decimal("0.15"),
    supplier_price_eur_per_kwh=Decimal("0.35"),
    feed_in_price_eur_per_kwh=Decimal("0.07"),
    network_fee_shared_eur_per_kwh=Decimal("0.02"),
    network_fee_residual_eur_per_kwh=Decimal("0.09"),
)


def community(
    *members: Membership,
    key: SharingKey | None = None,
    tariffs: tuple[Tariff, ...] = (TARIFF,),
) -> Community:
    return Community(
        "eeg-1",
        members or (Membership("a"), Membership("b"), Membership("pv")),
        (KeyPeriod(T0, key or dynamic_key()),),
        tuple(tariffs),
        Decimal("380"),
    )


def intervals(values: dict[str, list[tuple[int, int]]]) -> tuple[MemberInterval, ...]:
    """member → [(consumption, generation) per quarter-hour from T0]."""
    out = []
    for member, rows in values.items():
        for q, (c, g) in enumerate(rows):
            out.append(MemberInterval(member, T0 + q * QH, c, g))
    return tuple(sorted(out, key=lambda iv: (iv.qh_start, iv.member_id)))


def inputs(
    values: dict[str, list[tuple[int, int]]], com: Community | None = None
) -> SettlementInputs:
    n = len(next(iter(values.values())))
    return SettlementInputs(com or community(), T0, T0 + n * QH, intervals(values))


BASIC = {"a": [(100, 0), (0, 0)], "b": [(50, 0), (40, 0)], "pv": [(0, 120), (0, 0)]}


def test_statement_line_energy_money_and_co2() -> None:
    run = settle(inputs(BASIC))
    a = run.lines[0]
    assert (a.member_id, a.qh_start) == ("a", T0)
    assert (a.consumption_wh, a.received_wh, a.residual_wh) == (100, 80, 20)
    assert a.shared_cost_eur == Decimal("0.012")  # 80 Wh × 0.15 €/kWh
    assert a.residual_cost_eur == Decimal("0.007")  # 20 Wh × 0.35 €/kWh
    assert a.network_fee_eur == Decimal("0.0034")  # 80 × 0.02 + 20 × 0.09, per kWh
    assert a.co2_avoided_g == Decimal("30.4")  # 80 Wh × 380 g/kWh
    assert a.net_eur == Decimal("0.0224")
    pv = run.lines[2]
    assert (pv.generation_wh, pv.delivered_wh, pv.surplus_wh) == (120, 120, 0)
    assert pv.shared_revenue_eur == Decimal("0.018")
    assert pv.at_codes() == {
        "consumption": {"G.01": 0, "G.02": 0, "G.03": 0},
        "generation": {"G.01": 120, "P.01": 0},
    }
    # second quarter-hour: no generation, everything is residual
    b2 = next(ln for ln in run.lines if ln.member_id == "b" and ln.qh_start == T0 + QH)
    assert (b2.received_wh, b2.residual_wh, b2.quality) == (0, 40, IntervalQuality.L1)


@pytest.mark.parametrize(
    ("exact", "rounded"),
    [("0.125", "0.12"), ("0.135", "0.14"), ("-0.125", "-0.12"), ("0.0049999", "0.00")],
)
def test_the_one_rounding_rule_is_half_even_to_the_cent(exact: str, rounded: str) -> None:
    assert round_eur(Decimal(exact)) == Decimal(rounded)


def test_monthly_balance_rounds_the_exact_sum_once() -> None:
    # 2 × 125 Wh at 0.35 €/kWh = 0.0875 €: rounded once to 0.09, not 2 × 0.04
    run = settle(inputs({"a": [(125, 0), (125, 0)], "b": [(0, 0)] * 2, "pv": [(0, 0)] * 2}))
    rows = balances(run.lines, BalancePeriod.MONTH)
    a = next(b for b in rows if b.member_id == "a")
    assert a.first_day == date(2026, 7, 1)
    assert a.energy_wh["residual_wh"] == 250
    assert a.money_eur["residual_cost_eur"] == Decimal("0.09")
    assert a.quarter_hours == 2
    com = next(b for b in rows if b.member_id == COMMUNITY)
    assert com.energy_wh["consumption_wh"] == 250


def test_daily_balance_of_the_100_quarter_hour_day() -> None:
    start, end = local_day_bounds(date(2026, 10, 25))
    com = Community(
        "eeg-1",
        (Membership("a"),),
        (KeyPeriod(start, dynamic_key()),),
        (replace(TARIFF, valid_from=start),),
        Decimal("380"),
    )
    n = int((end - start) / QH)
    ivs = tuple(MemberInterval("a", start + q * QH, 10) for q in range(n))
    rows = balances(settle(SettlementInputs(com, start, end, ivs)).lines, BalancePeriod.DAY)
    assert [(b.member_id, b.first_day, b.quarter_hours) for b in rows] == [
        ("a", date(2026, 10, 25), 100),
        (COMMUNITY, date(2026, 10, 25), 100),
    ]
    assert rows[0].energy_wh["consumption_wh"] == 1000


def test_csv_has_one_row_per_member_and_quarter_hour_and_units_in_the_header() -> None:
    run = settle(inputs(BASIC))
    text = lines_csv(run.lines)
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert "consumption_wh" in header
    assert "shared_cost_eur" in header
    assert "co2_avoided_g" in header
    assert "at_consumer_G02_community_share_wh" in header
    assert len(rows) == 1 + 6
    first = dict(zip(header, rows[1], strict=True))
    assert first["qh_start_local"] == "2026-07-01T02:00:00+02:00"
    assert first["received_wh"] == "80"
    buf = io.StringIO()
    write_lines_csv(run.lines, buf)
    assert buf.getvalue() == text
    summary = list(csv.reader(io.StringIO(balances_csv(balances(run.lines)))))
    assert summary[0][:3] == ["member_id", "period", "first_day_local"]
    assert [r[0] for r in summary[1:]] == ["a", "b", "pv", COMMUNITY]


def test_members_join_and_leave_at_quarter_hour_boundaries() -> None:
    com = community(
        Membership("a", left=T0 + QH), Membership("b", joined=T0 + QH), Membership("pv")
    )
    ivs = (
        MemberInterval("a", T0, 100),
        MemberInterval("b", T0 + QH, 100),
        MemberInterval("pv", T0, 0, 50),
        MemberInterval("pv", T0 + QH, 0, 50),
    )
    run = settle(
        SettlementInputs(com, T0, T0 + 2 * QH, tuple(sorted(ivs, key=lambda i: i.qh_start)))
    )
    got = [(ln.member_id, ln.qh_start - T0, ln.received_wh) for ln in run.lines]
    assert got == [("a", timedelta(0), 50), ("pv", timedelta(0), 0), ("b", QH, 50), ("pv", QH, 0)]
    with pytest.raises(SettlementInputError, match="not in the community") as err:
        settle(SettlementInputs(com, T0, T0 + 2 * QH, (*ivs, MemberInterval("a", T0 + QH, 1))))
    assert err.value.member_id == "a"


def test_a_key_changes_from_a_given_quarter_hour() -> None:
    com = replace(
        community(),
        keys=(
            KeyPeriod(T0, dynamic_key()),
            KeyPeriod(T0 + QH, static_key({"a": "0.25", "b": "0.75"})),
        ),
    )
    run = settle(inputs({"a": [(100, 0)] * 2, "b": [(100, 0)] * 2, "pv": [(0, 100)] * 2}, com))
    received = {(ln.member_id, ln.qh_start): ln.received_wh for ln in run.lines}
    assert (received["a", T0], received["b", T0]) == (50, 50)
    assert (received["a", T0 + QH], received["b", T0 + QH]) == (25, 75)


def test_tariff_in_force_is_used() -> None:
    cheaper = replace(TARIFF, valid_from=T0 + QH, supplier_price_eur_per_kwh=Decimal("0.30"))
    com = community(tariffs=(TARIFF, cheaper))
    run = settle(inputs({"a": [(100, 0)] * 2, "b": [(0, 0)] * 2, "pv": [(0, 0)] * 2}, com))
    costs = [ln.residual_cost_eur for ln in run.lines if ln.member_id == "a"]
    assert costs == [Decimal("0.035"), Decimal("0.030")]


def test_participation_factor_scales_measured_values_down_to_whole_wh() -> None:
    com = community(Membership("a", participation_pct=50), Membership("pv"))
    run = settle(inputs({"a": [(101, 0)], "pv": [(0, 1000)]}, com))
    a = run.lines[0]
    assert (a.consumption_wh, a.received_wh) == (50, 50)


def test_participation_across_communities() -> None:
    one = community(Membership("a", participation_pct=60))
    two = replace(one, community_id="eeg-2")
    with pytest.raises(KeyConfigError, match="120 %") as err:
        validate_participation([one, two])
    assert (err.value.member_id, err.value.field) == ("a", "participation_pct")
    small = [
        replace(community(Membership("a", participation_pct=10)), community_id=f"c{i}")
        for i in range(6)
    ]
    with pytest.raises(KeyConfigError, match="6 communities"):
        validate_participation(small)
    validate_participation(small[:5])


BAD = [
    ("negative", [MemberInterval("a", T0, -5)], "a", "consumption_wh", "negative"),
    (
        "negative generation",
        [MemberInterval("a", T0, 5, -1)],
        "a",
        "generation_wh",
        "negative",
    ),
    (
        "duplicate",
        [MemberInterval("a", T0, 1), MemberInterval("a", T0, 2)],
        "a",
        "qh_start",
        "duplicated",
    ),
    (
        "out of order",
        [MemberInterval("a", T0 + QH, 1), MemberInterval("a", T0, 1)],
        "a",
        "qh_start",
        "out of order",
    ),
    ("unknown member", [MemberInterval("zz", T0, 1)], "zz", "member_id", "unknown"),
    (
        "off the grid",
        [MemberInterval("a", T0 + timedelta(minutes=7), 1)],
        "a",
        "qh_start",
        "quarter-hour",
    ),
    ("missing", [], "a", "consumption_wh", "no metered value"),
]


@pytest.mark.parametrize(
    ("extra", "member", "field", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_names_member_interval_and_field_and_changes_nothing(
    extra: list[MemberInterval], member: str, field: str, match: str
) -> None:
    good = inputs({"a": [(10, 0)] * 2, "b": [(10, 0)] * 2, "pv": [(0, 10)] * 2})
    ledger, _ = SettlementLedger("eeg-1").record(good)
    before = ledger.runs
    kept = tuple(iv for iv in good.intervals if iv.member_id != "a")
    bad = replace(good, intervals=(*kept, *extra))
    with pytest.raises(SettlementInputError, match=match) as err:
        ledger.record(bad)
    assert err.value.member_id == member
    assert err.value.field == field
    assert ledger.runs is before
    assert ledger.runs[0].lines == settle(good).lines


def test_key_shares_above_100_pct_and_unknown_key_member_are_refused() -> None:
    with pytest.raises(KeyConfigError, match="105 %"):
        static_key({"a": "0.55", "b": "0.5"})
    com = community(key=static_key({"a": "0.5", "ghost": "0.5"}))
    with pytest.raises(KeyConfigError, match="member 'ghost'"):
        settle(inputs(BASIC, com))


def _readings(values: dict[int, int]) -> list[RegisterReading]:
    """minute → register value (Wh)."""
    return [RegisterReading(T0 + timedelta(minutes=m), v) for m, v in sorted(values.items())]


def test_restatement_after_late_meter_data() -> None:
    """b's meter misses readings between 00:05 and 00:40; they arrive later."""
    early = {0: 0, 5: 50, 40: 400, 45: 450}
    late = {0: 0, 5: 50, 10: 60, 15: 70, 20: 200, 25: 300, 30: 380, 35: 390, 40: 400, 45: 450}
    flat = {m: 0 for m in range(0, 46, 5)}

    def day(b_values: dict[int, int]) -> SettlementInputs:
        b = member_intervals("b", register_intervals("b-imp", _readings(b_values)))
        a = member_intervals("a", register_intervals("a-imp", _readings({m: 2 * m for m in flat})))
        pv = member_intervals(
            "pv",
            register_intervals("pv-imp", _readings(flat)),
            register_intervals("pv-exp", _readings({m: 10 * m for m in flat})),
        )
        ivs = tuple(sorted((*a, *b, *pv), key=lambda iv: (iv.qh_start, iv.member_id)))
        return SettlementInputs(community(), T0, T0 + 3 * QH, ivs)

    ledger, first = SettlementLedger("eeg-1").record(day(early))
    assert first is None
    v1 = ledger.runs[0]
    b_v1 = [ln for ln in v1.lines if ln.member_id == "b"]
    assert [ln.quality for ln in b_v1] == [IntervalQuality.L2] * 3
    assert [ln.consumption_wh for ln in b_v1] == [150, 150, 150]  # interpolated 10 Wh/min

    ledger2, restatement = ledger.record(day(late))
    assert restatement is not None
    assert [r.version for r in ledger2.runs] == [1, 2]
    assert ledger2.runs[0] is v1  # append-only: v1 untouched
    b_v2 = [ln for ln in ledger2.runs[1].lines if ln.member_id == "b"]
    assert [ln.consumption_wh for ln in b_v2] == [70, 310, 70]
    assert [ln.quality for ln in b_v2] == [IntervalQuality.L1] * 3
    changed = {(c.member_id, c.qh_start, c.field): c for c in restatement.changes}
    c = changed["b", T0 + QH, "consumption_wh"]
    assert (c.old, c.new, c.delta) == (150, 310, 160)
    q = changed["b", T0, "quality"]
    assert (q.old, q.new, q.delta) == (IntervalQuality.L2, IntervalQuality.L1, None)
    assert all(ch.member_id != "a" or ch.field != "consumption_wh" for ch in restatement.changes)
    # the month as a member sees it: b drew 98 Wh more from the grid, pv fed 100 Wh more out
    month = {
        (c.member_id, c.field): c
        for c in balance_changes(balances(v1.lines), balances(ledger2.runs[1].lines))
    }
    assert (month["b", "residual_wh"].old, month["b", "residual_wh"].new) == (75, 173)
    assert month["a", "residual_wh"].delta == 2
    assert month["pv", "surplus_wh"].delta == 100
    assert month["b", "residual_cost_eur"].delta == Decimal("0.03")  # 0.02625 → 0.06055
    assert ("b", "consumption_wh") not in month  # the total did not change
    text = io.StringIO()
    write_changes_csv(restatement.changes, text)
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert rows[0] == [
        "member_id",
        "qh_start_utc",
        "qh_start_local",
        "field",
        "old",
        "new",
        "delta",
    ]
    assert len(rows) == 1 + len(restatement.changes)
    assert (
        next(r for r in rows if r[0] == "b" and r[3] == "consumption_wh" and r[6] == "160")[:4]
    ) == ["b", "2026-07-01T00:15:00+00:00", "2026-07-01T02:15:00+02:00", "consumption_wh"]
    # same inputs again: nothing new
    ledger3, none = ledger2.record(day(late))
    assert none is None
    assert ledger3 is ledger2


def test_restate_refuses_another_period() -> None:
    run = settle(inputs(BASIC))
    other = replace(
        inputs(BASIC), period_end=T0 + QH, intervals=intervals({k: v[:1] for k, v in BASIC.items()})
    )
    with pytest.raises(SettlementInputError, match="restatement of run v1"):
        restate(run, other)


def test_mieterstrom_sum_meter() -> None:
    """Main meter 300 Wh import, non-participant 120 Wh: participants drew 180 Wh."""
    split = split_sum_meter(T0, 300, {"t1": 200, "t2": 100}, {"n1": 120})
    assert split.total_grid_draw_wh == 180
    assert split.local_supply_wh == (80, 40)
    assert split.grid_draw_wh == (120, 60)
    # PV covers everything: main import below the non-participants' consumption
    assert split_sum_meter(T0, 50, {"t1": 10}, {"n1": 120}).grid_draw_wh == (0,)
    with pytest.raises(SettlementInputError, match=r"member 'n1'.*negative"):
        split_sum_meter(T0, 10, {"t1": 1}, {"n1": -1})
    check_mieterstrom_price(Decimal("0.27"), Decimal("0.30"))
    with pytest.raises(SettlementInputError, match="90 %"):
        check_mieterstrom_price(Decimal("0.28"), Decimal("0.30"))


def test_a_ledger_takes_only_its_own_community_and_keeps_periods_apart() -> None:
    ledger = SettlementLedger("eeg-2")
    with pytest.raises(SettlementInputError, match="ledger of 'eeg-2'") as err:
        ledger.record(inputs(BASIC))
    assert err.value.field == "community_id"
    assert ledger.runs == ()
    one = SettlementLedger("eeg-1")
    first_qh = inputs({k: v[:1] for k, v in BASIC.items()})
    one, _ = one.record(first_qh)
    one, restated = one.record(inputs(BASIC))
    assert restated is None  # another period: its own v1, not a restatement
    assert [(r.version, r.period_end - r.period_start) for r in one.runs] == [(1, QH), (1, 2 * QH)]
