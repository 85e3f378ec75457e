"""Statement lines, money, the versioning rules of settlement runs and bad input, on small
hand-checked cases."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from kernel.quarterhours import BERLIN, local_day_bounds
from vpp.metering.intervals import register_intervals
from vpp.metering.member import member_intervals
from vpp.metering.quality import IntervalQuality
from vpp.metering.registers import RegisterReading
from vpp.settlement.balances import Resolution, SettledPeriod, bucketise
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
from vpp.settlement.runs import (
    DayInputs,
    NewVersion,
    RunKind,
    Statement,
    next_version,
    statement_changes,
)
from vpp.settlement.settle import settle_lines
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


@dataclass(frozen=True)
class Stored:
    """A stored version as the rules see it (the store's SettlementRun has these too)."""

    version: int
    details: dict[str, Any]
    statements: tuple[Statement, ...] = field(default=())


def stored(new: NewVersion, version: int) -> Stored:
    return Stored(version, new.details, new.statements)


def day_of(inp: SettlementInputs, missing: tuple[str, ...] = ()) -> DayInputs:
    """The inputs as the run of a "day" that ends where they end (a complete day)."""
    return DayInputs(inp, inp.period_start.date(), inp.period_end, missing)


def figures(new: NewVersion, member_id: str) -> Statement:
    return next(s for s in new.statements if s.member_id == member_id)


def inputs(
    values: dict[str, list[tuple[int, int]]], com: Community | None = None
) -> SettlementInputs:
    n = len(next(iter(values.values())))
    return SettlementInputs(com or community(), T0, T0 + n * QH, intervals(values))


BASIC = {"a": [(100, 0), (0, 0)], "b": [(50, 0), (40, 0)], "pv": [(0, 120), (0, 0)]}


def test_statement_line_energy_money_and_co2() -> None:
    lines = settle_lines(inputs(BASIC))
    a = lines[0]
    assert (a.member_id, a.qh_start) == ("a", T0)
    assert (a.consumption_wh, a.received_wh, a.residual_wh) == (100, 80, 20)
    assert a.shared_cost_eur == Decimal("0.012")  # 80 Wh × 0.15 €/kWh
    assert a.residual_cost_eur == Decimal("0.007")  # 20 Wh × 0.35 €/kWh
    assert a.network_fee_eur == Decimal("0.0034")  # 80 × 0.02 + 20 × 0.09, per kWh
    assert a.co2_avoided_g == Decimal("30.4")  # 80 Wh × 380 g/kWh
    assert a.net_eur == Decimal("0.0224")
    pv = lines[2]
    assert (pv.generation_wh, pv.delivered_wh, pv.surplus_wh) == (120, 120, 0)
    assert pv.shared_revenue_eur == Decimal("0.018")
    assert pv.at_codes() == {
        "consumption": {"G.01": 0, "G.02": 0, "G.03": 0},
        "generation": {"G.01": 120, "P.01": 0},
    }
    # second quarter-hour: no generation, everything is residual
    b2 = next(ln for ln in lines if ln.member_id == "b" and ln.qh_start == T0 + QH)
    assert (b2.received_wh, b2.residual_wh, b2.quality) == (0, 40, IntervalQuality.L1)


@pytest.mark.parametrize(
    ("exact", "rounded"),
    [("0.125", "0.12"), ("0.135", "0.14"), ("-0.125", "-0.12"), ("0.0049999", "0.00")],
)
def test_the_one_rounding_rule_is_half_even_to_the_cent(exact: str, rounded: str) -> None:
    assert round_eur(Decimal(exact)) == Decimal(rounded)


def test_a_statement_rounds_the_exact_sum_once() -> None:
    # 2 × 125 Wh at 0.35 €/kWh = 0.0875 €: rounded once to 0.09, not 2 × 0.04
    inp = inputs({"a": [(125, 0), (125, 0)], "b": [(0, 0)] * 2, "pv": [(0, 0)] * 2})
    new = next_version(day_of(inp), RunKind.FINAL, None, BERLIN)
    assert new is not None
    a = figures(new, "a")
    assert a.grid_import_wh == 250
    assert a.details["money_eur"]["residual_cost_eur"] == "0.09"
    assert a.details["money_eur"]["network_fee_eur"] == "0.02"  # 250 Wh × 0.09: 0.0225
    # the amount is the exact net (0.0875 + 0.0225), rounded once
    assert Decimal(a.details["net_exact_eur"]) == Decimal("0.11")
    assert a.amount_eur == Decimal("0.11")
    assert a.details["quarter_hours"] == 2
    assert new.details["totals_wh"]["consumption_wh"] == 250


def test_the_100_quarter_hour_day_settles_and_shows_as_one_day() -> None:
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
    day = DayInputs(SettlementInputs(com, start, end, ivs), date(2026, 10, 25), end)
    new = next_version(day, RunKind.FINAL, None, BERLIN)
    assert new is not None
    assert (new.reason, new.details["quarter_hours"], new.details["complete"]) == (
        "final",
        100,
        True,
    )
    a = figures(new, "a")
    assert len(a.details["lines"]["qh_start"]) == 100
    assert a.consumption_wh == 1000
    [row] = bucketise(
        Resolution.DAY,
        date(2026, 10, 25),
        date(2026, 10, 26),
        BERLIN,
        periods=[SettledPeriod(start, end, a)],
    )
    assert row.end - row.start == timedelta(hours=25)
    assert row.settled_wh["consumption_wh"] == 1000


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
    lines = settle_lines(
        SettlementInputs(com, T0, T0 + 2 * QH, tuple(sorted(ivs, key=lambda i: i.qh_start)))
    )
    got = [(ln.member_id, ln.qh_start - T0, ln.received_wh) for ln in lines]
    assert got == [("a", timedelta(0), 50), ("pv", timedelta(0), 0), ("b", QH, 50), ("pv", QH, 0)]
    with pytest.raises(SettlementInputError, match="not in the community") as err:
        settle_lines(
            SettlementInputs(com, T0, T0 + 2 * QH, (*ivs, MemberInterval("a", T0 + QH, 1)))
        )
    assert err.value.member_id == "a"


def test_a_key_changes_from_a_given_quarter_hour() -> None:
    com = replace(
        community(),
        keys=(
            KeyPeriod(T0, dynamic_key()),
            KeyPeriod(T0 + QH, static_key({"a": "0.25", "b": "0.75"})),
        ),
    )
    lines = settle_lines(
        inputs({"a": [(100, 0)] * 2, "b": [(100, 0)] * 2, "pv": [(0, 100)] * 2}, com)
    )
    received = {(ln.member_id, ln.qh_start): ln.received_wh for ln in lines}
    assert (received["a", T0], received["b", T0]) == (50, 50)
    assert (received["a", T0 + QH], received["b", T0 + QH]) == (25, 75)


def test_tariff_in_force_is_used() -> None:
    cheaper = replace(TARIFF, valid_from=T0 + QH, supplier_price_eur_per_kwh=Decimal("0.30"))
    com = community(tariffs=(TARIFF, cheaper))
    lines = settle_lines(inputs({"a": [(100, 0)] * 2, "b": [(0, 0)] * 2, "pv": [(0, 0)] * 2}, com))
    costs = [ln.residual_cost_eur for ln in lines if ln.member_id == "a"]
    assert costs == [Decimal("0.035"), Decimal("0.030")]


def test_participation_factor_scales_measured_values_down_to_whole_wh() -> None:
    com = community(Membership("a", participation_pct=50), Membership("pv"))
    lines = settle_lines(inputs({"a": [(101, 0)], "pv": [(0, 1000)]}, com))
    a = lines[0]
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
def test_bad_input_names_member_interval_and_field_and_adds_no_version(
    extra: list[MemberInterval], member: str, field: str, match: str
) -> None:
    good = inputs({"a": [(10, 0)] * 2, "b": [(10, 0)] * 2, "pv": [(0, 10)] * 2})
    first = next_version(day_of(good), RunKind.FINAL, None, BERLIN)
    assert first is not None
    v1 = stored(first, 1)
    kept = tuple(iv for iv in good.intervals if iv.member_id != "a")
    bad = replace(good, intervals=(*kept, *extra))
    for newest in (None, v1):
        with pytest.raises(SettlementInputError, match=match) as err:
            next_version(day_of(bad), RunKind.FINAL, newest, BERLIN)
        assert err.value.member_id == member
        assert err.value.field == field


def test_key_shares_above_100_pct_and_unknown_key_member_are_refused() -> None:
    with pytest.raises(KeyConfigError, match="105 %"):
        static_key({"a": "0.55", "b": "0.5"})
    com = community(key=static_key({"a": "0.5", "ghost": "0.5"}))
    with pytest.raises(KeyConfigError, match="member 'ghost'"):
        settle_lines(inputs(BASIC, com))


def _readings(values: dict[int, int]) -> list[RegisterReading]:
    """minute → register value (Wh)."""
    return [RegisterReading(T0 + timedelta(minutes=m), v) for m, v in sorted(values.items())]


def day_with_b(b_values: dict[int, int]) -> SettlementInputs:
    """a draws 2 Wh/min, pv feeds in 10 Wh/min, b as its register readings say (3 qh)."""
    flat = {m: 0 for m in range(0, 46, 5)}
    b = member_intervals("b", register_intervals("b-imp", _readings(b_values)))
    a = member_intervals("a", register_intervals("a-imp", _readings({m: 2 * m for m in flat})))
    pv = member_intervals(
        "pv",
        register_intervals("pv-imp", _readings(flat)),
        register_intervals("pv-exp", _readings({m: 10 * m for m in flat})),
    )
    ivs = tuple(sorted((*a, *b, *pv), key=lambda iv: (iv.qh_start, iv.member_id)))
    return SettlementInputs(community(), T0, T0 + 3 * QH, ivs)


EARLY = {0: 0, 5: 50, 40: 400, 45: 450}
LATE = {0: 0, 5: 50, 10: 60, 15: 70, 20: 200, 25: 300, 30: 380, 35: 390, 40: 400, 45: 450}


def test_restatement_after_late_meter_data() -> None:
    """b's meter misses readings between 00:05 and 00:40; they arrive after the final run."""
    first = next_version(day_of(day_with_b(EARLY)), RunKind.FINAL, None, BERLIN)
    assert first is not None
    assert first.reason == "final"
    assert "restates_version" not in first.details
    b_v1 = figures(first, "b").details["lines"]
    assert b_v1["quality"] == ["L2"] * 3
    assert b_v1["consumption_wh"] == [150, 150, 150]  # interpolated 10 Wh/min
    assert first.details["substitute_quarter_hours"] == {"b": {"L2": 3, "L3": 0}}
    v1 = stored(first, 1)

    restated = next_version(day_of(day_with_b(LATE)), RunKind.FINAL, v1, BERLIN)
    assert restated is not None
    assert restated.reason == "restatement"
    assert restated.details["restates_version"] == 1
    b_v2 = figures(restated, "b").details["lines"]
    assert b_v2["consumption_wh"] == [70, 310, 70]
    assert b_v2["quality"] == ["L1"] * 3
    assert restated.details["substitute_quarter_hours"] == {}
    # per member what a statement shows, by hand: dynamic key, G = 150 Wh per quarter-hour.
    # v1: a 30 + b 150 > 150 in every qh → a 25, b 125; v2: qh 0 and 2 are covered (a 30,
    # b 70, 50 Wh surplus), qh 1: a 30 + b 310 → a 13, b 137 (largest remainder).
    # b's total consumption (the counter's growth) did not change, only its split.
    assert restated.details["changes"] == {
        "a": {
            "shared_received_wh": {"old": "75", "new": "73", "delta": "-2"},
            "grid_import_wh": {"old": "15", "new": "17", "delta": "2"},
        },
        "b": {
            "shared_received_wh": {"old": "375", "new": "277", "delta": "-98"},
            "grid_import_wh": {"old": "75", "new": "173", "delta": "98"},
            # (375·0.15 + 75·0.35 + 375·0.02 + 75·0.09) Wh·€/kWh = 0.09675 → 0.10;
            # (277·0.15 + 173·0.35 + 277·0.02 + 173·0.09) = 0.12321 → 0.12
            "amount_eur": {"old": "0.10", "new": "0.12", "delta": "0.02"},
        },
        "pv": {
            "shared_delivered_wh": {"old": "450", "new": "350", "delta": "-100"},
            "grid_export_wh": {"old": "0", "new": "100", "delta": "100"},
            # −450·0.15 = −0.0675 → −0.07; −350·0.15 − 100·0.07 = −0.0595 → −0.06
            "amount_eur": {"old": "-0.07", "new": "-0.06", "delta": "0.01"},
        },
    }
    # the same inputs again: nothing new, whether v2 or a fresh process reads it
    v2 = stored(restated, 2)
    assert next_version(day_of(day_with_b(LATE)), RunKind.FINAL, v2, BERLIN) is None
    # the inputs of v1 again after v2: a restatement back (v3), naming v2
    back = next_version(day_of(day_with_b(EARLY)), RunKind.FINAL, v2, BERLIN)
    assert back is not None
    assert back.details["restates_version"] == 2
    assert back.details["changes"]["b"]["grid_import_wh"] == {
        "old": "173",
        "new": "75",
        "delta": "-98",
    }


def test_provisional_versions_never_over_a_final_one() -> None:
    morning = replace(
        day_with_b(EARLY),
        period_end=T0 + 2 * QH,
        intervals=tuple(iv for iv in day_with_b(EARLY).intervals if iv.qh_start < T0 + 2 * QH),
    )
    day_end = T0 + 3 * QH
    so_far = DayInputs(morning, date(2026, 7, 1), day_end)
    first = next_version(so_far, RunKind.PROVISIONAL, None, BERLIN)
    assert first is not None
    assert first.reason == "provisional through 02:30"  # 00:30 UTC in Berlin (CEST)
    assert (first.details["kind"], first.details["complete"]) == ("provisional", False)
    assert first.details["through"] == (T0 + 2 * QH).isoformat()
    assert "lines" not in figures(first, "a").details  # provisional runs carry totals only
    v1 = stored(first, 1)
    # the same inputs: nothing; the same inputs as a final run: a new version of its own kind
    assert next_version(so_far, RunKind.PROVISIONAL, v1, BERLIN) is None
    whole = DayInputs(day_with_b(EARLY), date(2026, 7, 1), day_end)
    later = next_version(whole, RunKind.PROVISIONAL, v1, BERLIN)
    assert later is not None
    assert later.reason == "provisional through 02:45"
    final = next_version(whole, RunKind.FINAL, stored(later, 2), BERLIN)
    assert final is not None
    assert (final.reason, final.details["kind"]) == ("final", "final")
    assert "restates_version" not in final.details  # a final run over a provisional one
    v3 = stored(final, 3)
    # once final, a provisional run (whatever its inputs) adds nothing
    assert next_version(so_far, RunKind.PROVISIONAL, v3, BERLIN) is None
    assert next_version(whole, RunKind.PROVISIONAL, v3, BERLIN) is None


def test_statement_changes_count_a_new_member_from_zero() -> None:
    z = Decimal(0)
    old = (Statement("a", Decimal(10), z, z, z, Decimal(10), z, Decimal("0.04")),)
    new = (
        Statement("a", Decimal(10), z, z, z, Decimal(10), z, Decimal("0.04")),
        Statement("b", Decimal(5), z, z, z, Decimal(5), z, Decimal("0.02")),
    )
    assert statement_changes(old, new) == {
        "b": {
            "consumption_wh": {"old": "0", "new": "5", "delta": "5"},
            "grid_import_wh": {"old": "0", "new": "5", "delta": "5"},
            "amount_eur": {"old": "0", "new": "0.02", "delta": "0.02"},
        }
    }


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
