"""The pure parts of a dispatch round around the LP: sessions of EVs and storage heaters in
quarter-hours of the horizon, prices from the tariffs, and the plan's JSON document."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from vpp.dispatch import DispatchProblem, InvalidDispatchInput, Member, Prices, Pv, solve
from vpp.dispatch.payload import plan_from_payload, plan_payload
from vpp.dispatch.prices import tariff_prices
from vpp.dispatch.sessions import session, within_horizon
from vpp.settlement.model import Tariff

BERLIN = ZoneInfo("Europe/Berlin")
QH0 = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("local_start", "begin", "end", "expected"),
    [
        # evening arrival, morning departure; horizon from 20:00: in progress until 07:00
        ("2026-06-15 20:00", time(18), time(7), (0, 44)),
        # horizon from 12:00: the next session, arrival rounded up, departure down
        ("2026-06-15 12:00", time(18, 5), time(19, 55), (25, 31)),
        # 02:00 → 07:00: the session that began yesterday evening
        ("2026-06-16 02:00", time(18), time(7), (0, 20)),
        # the next session begins after the horizon (16 qh = 4 h from 08:00)
        ("2026-06-15 08:00", time(18), time(7), None),
        # spring forward: 22:00 → 06:00 across the lost hour is 7 h = 28 qh
        ("2026-03-28 22:00", time(22), time(6), (0, 28)),
        # a window opening in the lost hour (02:30 CET) opens an hour later: 03:30 CEST
        ("2026-03-29 00:00", time(2, 30), time(6), (10, 20)),
    ],
)
def test_sessions_in_quarter_hours(
    local_start: str, begin: time, end: time, expected: tuple[int, int] | None
) -> None:
    start = datetime.fromisoformat(local_start).replace(tzinfo=BERLIN).astimezone(UTC)
    n = 16 if expected is None else 96
    s = session(start, n, begin, end, BERLIN)
    assert (None if s is None else (s.from_qh, s.to_qh)) == expected


def test_departure_after_the_horizon_leaves_only_what_cannot_wait() -> None:
    s = session(datetime(2026, 6, 15, 18, tzinfo=UTC), 16, time(18), time(7), ZoneInfo("UTC"))
    assert s is not None
    assert (s.from_qh, s.to_qh) == (0, 52)
    # 36 qh after the horizon at 4 kW = 36 kWh can still come later
    assert within_horizon(40_000.0, 4000.0, s, 16) == pytest.approx(4000.0)
    assert within_horizon(30_000.0, 4000.0, s, 16) == 0.0
    assert within_horizon(30_000.0, 4000.0, s, 96) == pytest.approx(30_000.0)


def _tariff(valid_from: datetime, supplier: str) -> Tariff:
    return Tariff(
        valid_from,
        community_price_eur_per_kwh=Decimal("0.20"),
        supplier_price_eur_per_kwh=Decimal(supplier),
        feed_in_price_eur_per_kwh=Decimal("0.08"),
        network_fee_shared_eur_per_kwh=Decimal("0.01"),
        network_fee_residual_eur_per_kwh=Decimal("0.02"),
    )


def test_prices_follow_the_tariff_in_force() -> None:
    summer = _tariff(QH0 + timedelta(hours=1), "0.25")
    standard = _tariff(datetime(2026, 1, 1, tzinfo=UTC), "0.30")
    p = tariff_prices([summer, standard], QH0, 8)  # any order
    assert p.import_eur_per_kwh == pytest.approx([0.32] * 4 + [0.27] * 4)  # supplier + fee
    assert p.feed_in_eur_per_kwh == pytest.approx([0.08] * 8)
    assert p.community_eur_per_kwh == pytest.approx([0.20] * 8)
    assert p.network_fee_eur_per_kwh == pytest.approx([0.01] * 8)


def test_no_tariff_in_force_is_refused_with_the_first_quarter_hour() -> None:
    with pytest.raises(InvalidDispatchInput, match=r"no tariff .* in force at 2026-06-15T10:00"):
        tariff_prices([_tariff(QH0 + timedelta(hours=1), "0.3")], QH0, 8)
    with pytest.raises(InvalidDispatchInput, match="has no tariff") as err:
        tariff_prices([], QH0, 1)
    assert err.value.field == "tariffs"


def test_payload_round_trip_keeps_controllable_and_notes() -> None:
    problem = DispatchProblem(
        "c", QH0, 4, (Member("m", (100.0,) * 4, (Pv("p", (500.123456,) * 4, 1000.0),)),),
        Prices((0.3,) * 4, (0.1,) * 4, (0.2,) * 4, (0.0,) * 4),
    )  # fmt: skip
    plan = solve(problem)
    assert plan.asset("m", "p").power_w[0] != round(plan.asset("m", "p").power_w[0], 1)
    payload = plan_payload(plan, frozenset({("m", "p")}), ["x"])
    decoded, controllable, notes = plan_from_payload(payload)
    assert (controllable, notes) == (frozenset({("m", "p")}), ("x",))
    assert plan_payload(decoded, controllable, notes) == payload
    assert decoded.asset("m", "p").power_w == pytest.approx(plan.asset("m", "p").power_w, abs=0.05)
    assert decoded.shared_wh == pytest.approx(plan.shared_wh, abs=0.05)
    assert decoded.status is plan.status
    assert decoded.start == plan.start
    # a plan stored before heat pumps were dropped carries nominal_power_w: still read
    for a in payload["assets"]:
        a["nominal_power_w"] = None
    assert plan_from_payload(payload)[0] == decoded
