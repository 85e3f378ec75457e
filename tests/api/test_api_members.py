"""Members see their own figures, by quarter-hour, day and month, and nobody else's.

The town: community c1 with six members m01..m06, community c2 with four (m07..m10). On the
local day 2026-11-24 (Europe/Berlin, UTC+1) m01 imports 100 Wh and m02 250 Wh every
quarter-hour; c1 is settled provisionally for the first two quarter-hours and finally for the
day, and the day is then restated (version 2) with new figures.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from kernel.readings import Quality
from store import Store
from store.intervals import Interval
from store.settlement import Statement
from tests.api.conftest import NOW, bearer

pytestmark = pytest.mark.usefixtures("accounts")

DAY_START = datetime(2026, 11, 23, 23, tzinfo=UTC)  # 2026-11-24 00:00 Europe/Berlin
DAY_END = DAY_START + timedelta(days=1)
QH = timedelta(minutes=15)
C1 = [f"m0{i}" for i in range(1, 7)]
C2 = ["m07", "m08", "m09", "m10"]
OTHERS = re.compile(r"m0[2-9]|m10")
DAY = {"start": "2026-11-24", "end": "2026-11-25"}


def statement(member: str, consumption: int, received: int, eur: str, co2: int = 0) -> Statement:
    return Statement(
        member_id=member,
        consumption_wh=Decimal(consumption),
        generation_wh=Decimal(0),
        shared_received_wh=Decimal(received),
        shared_delivered_wh=Decimal(0),
        grid_import_wh=Decimal(consumption - received),
        grid_export_wh=Decimal(0),
        amount_eur=Decimal(eur),
        co2_g=Decimal(co2),
    )


async def seed(store: Store) -> None:
    intervals = []
    for q in range(96):
        t = DAY_START + q * QH
        quality = Quality.SUBSTITUTE if q == 5 else Quality.GOOD
        intervals.append(Interval("m01", "import_energy_wh", t, Decimal(100), quality))
        intervals.append(Interval("m01", "export_energy_wh", t, Decimal(0)))
        intervals.append(Interval("m02", "import_energy_wh", t, Decimal(250)))
    await store.intervals.record(intervals, now=NOW)
    for q in range(2):
        start = DAY_START + q * QH
        await store.settlement.append(
            "c1",
            start,
            start + QH,
            [statement(m, 100, 40, "0.020000") for m in C1],
            reason="provisional",
            now=NOW,
        )
    await store.settlement.append(
        "c1",
        DAY_START,
        DAY_END,
        [statement(m, 9600, 3000, "2.000000") for m in C1],
        reason="final",
        now=NOW,
    )
    await store.settlement.append(
        "c1",
        DAY_START,
        DAY_END,
        [statement(m, 9600, 3100, "1.995000", co2=1240) for m in C1],
        reason="restated: late meter data",
        now=NOW,
    )
    await store.settlement.append(
        "c2",
        DAY_START,
        DAY_END,
        [statement(m, 1000, 100, "0.3") for m in C2],
        reason="final",
        now=NOW,
    )


@pytest.fixture
async def town(store: Store) -> None:
    await seed(store)


@pytest.mark.usefixtures("town")
async def test_day_balance_sums_intervals_and_takes_the_newest_daily_statement(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(
        "/api/v1/members/m01/balances", params={"resolution": "day", **DAY}, headers=bearer("anna")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["member_id"] == "m01"
    assert body["timezone"] == "Europe/Berlin"
    [row] = body["rows"]
    assert row["start"] == "2026-11-23T23:00:00Z"
    assert row["end"] == "2026-11-24T23:00:00Z"
    assert row["quarter_hours"] == 96
    assert row["substitute_quarter_hours"] == 1
    assert row["metered_kwh"] == {"import_energy_kwh": "9.6", "export_energy_kwh": "0"}
    # the restated daily run replaces version 1 and the provisional quarter-hours it covers
    assert row["settled"] == {
        "consumption_kwh": "9.6",
        "generation_kwh": "0",
        "shared_received_kwh": "3.1",
        "shared_delivered_kwh": "0",
        "residual_kwh": "6.5",
        "surplus_kwh": "0",
        "amount_eur": "2.00",
        "co2_avoided_g": "1240",
        "statements": 1,
    }


@pytest.mark.usefixtures("town")
async def test_quarter_hour_balance_shows_the_provisional_quarter_hours(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(
        "/api/v1/members/m01/balances",
        params={"resolution": "quarter_hour", **DAY},
        headers=bearer("anna"),
    )
    rows = r.json()["rows"]
    assert len(rows) == 96
    assert [row["settled"]["consumption_kwh"] for row in rows[:2]] == ["0.1", "0.1"]
    assert all(row["settled"] is None for row in rows[2:])
    assert rows[5]["substitute_quarter_hours"] == 1
    assert rows[0]["metered_kwh"]["import_energy_kwh"] == "0.1"


@pytest.mark.usefixtures("town")
async def test_month_balance_covers_the_local_month(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/members/m01/balances",
        params={"resolution": "month", "start": "2026-11-01", "end": "2027-01-01"},
        headers=bearer("anna"),
    )
    rows = r.json()["rows"]
    assert [(x["start"], x["end"]) for x in rows] == [
        ("2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z"),
        ("2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z"),
    ]
    assert rows[0]["settled"]["amount_eur"] == "2.00"
    assert rows[0]["quarter_hours"] == 96
    assert rows[1]["settled"] is None


@pytest.mark.usefixtures("town")
async def test_statement_versions_include_the_restated_ones(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/members/m01/statements", params=DAY, headers=bearer("anna"))
    versions = r.json()["versions"]
    assert [(v["reason"], v["version"], v["current"]) for v in versions] == [
        ("provisional", 1, True),
        ("final", 1, False),
        ("restated: late meter data", 2, True),
        ("provisional", 1, True),
    ]
    assert versions[1]["figures"]["shared_received_kwh"] == "3"
    assert versions[2]["figures"]["shared_received_kwh"] == "3.1"


@pytest.mark.usefixtures("town")
async def test_csv_export_matches_the_json(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/exports/balances.csv", params={"resolution": "day", **DAY}, headers=bearer("anna")
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "m01" in r.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    assert row["export_energy_kwh"] == "0"
    assert row["import_energy_kwh"] == "9.6"
    assert row["shared_received_kwh"] == "3.1"
    assert row["residual_kwh"] == "6.5"
    assert row["amount_eur"] == "2.00"
    assert row["quarter_hours"] == "96"


@pytest.mark.usefixtures("town")
async def test_community_aggregate_needs_five_members(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/community/balances", params={"resolution": "day", **DAY}, headers=bearer("anna")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["community_id"] == "c1"
    [row] = body["rows"]
    assert row["members"] == 6
    assert row["settled"]["consumption_kwh"] == "57.6"
    assert row["settled"]["shared_received_kwh"] == "18.6"
    assert row["settled"]["amount_eur"] == "11.97"
    # c2 has four members: no aggregate, not even for an operator
    r = await client.get(
        "/api/v1/community/balances",
        params={"resolution": "day", "community_id": "c2", **DAY},
        headers=bearer("olga"),
    )
    assert r.status_code == 404
    # and a member does not see a community they are not in
    r = await client.get(
        "/api/v1/community/balances",
        params={"resolution": "day", "community_id": "c2", **DAY},
        headers=bearer("anna"),
    )
    assert r.status_code == 404


ANOTHER_MEMBERS_DATA: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/api/v1/members/m02/balances", {"resolution": "day", **DAY}),
    ("GET", "/api/v1/members/m02/balances", {"resolution": "quarter_hour", **DAY}),
    ("GET", "/api/v1/members/m02/statements", DAY),
    ("GET", "/api/v1/members/m02/personal-data", {}),
    ("POST", "/api/v1/members/m02/deletion-request", {}),
    ("GET", "/api/v1/members/m07/balances", DAY),
    ("GET", "/api/v1/members/nobody/balances", DAY),
    ("GET", "/api/v1/exports/balances.csv", {"member_id": "m02", **DAY}),
    ("GET", "/api/v1/exports/balances.csv", {"member_id": "nobody", **DAY}),
]


@pytest.mark.usefixtures("town")
async def test_another_members_data_is_404_and_says_nothing(client: httpx.AsyncClient) -> None:
    """By path id, by query parameter, as CSV: the same 404 as for an id that does not exist."""
    for method, url, params in ANOTHER_MEMBERS_DATA:
        r = await client.request(method, url, params=params, headers=bearer("anna"))
        assert r.status_code == 404, (method, url, params)
        assert r.json() == {"detail": "no such member"}


@pytest.mark.usefixtures("town")
async def test_nothing_a_member_sees_names_another_member(
    client: httpx.AsyncClient,
) -> None:
    headers = bearer("anna")
    responses = [
        await client.get("/api/v1/me", headers=headers),
        await client.get("/api/v1/members/m01/personal-data", headers=headers),
        await client.get("/api/v1/exports/balances.csv", params=DAY, headers=headers),
        await client.get(
            "/api/v1/community/balances",
            params={"resolution": "quarter_hour", **DAY},
            headers=headers,
        ),
    ]
    for resolution in ("quarter_hour", "day", "month"):
        params = {"resolution": resolution, **DAY}
        for path in ("balances", "statements"):
            responses.append(
                await client.get(f"/api/v1/members/m01/{path}", params=params, headers=headers)
            )
    for r in responses:
        assert r.status_code == 200, (r.url, r.text)
        seen = r.text + repr(sorted(r.headers.items()))
        assert not OTHERS.search(seen), (r.url, OTHERS.search(seen))
    export = responses[1].json()
    assert len(export["intervals"]) == 2 * 96
    assert [a["username"] for a in export["accounts"]] == ["anna"]


@pytest.mark.usefixtures("town")
async def test_operator_reads_any_member_and_must_name_one_for_csv(
    client: httpx.AsyncClient,
) -> None:
    headers = bearer("olga")
    r = await client.get("/api/v1/members/m02/balances", params=DAY, headers=headers)
    assert r.json()["rows"][0]["metered_kwh"] == {"import_energy_kwh": "24"}
    r = await client.get("/api/v1/exports/balances.csv", params=DAY, headers=headers)
    assert r.status_code == 422
    assert r.json() == {
        "detail": [{"field": "query.member_id", "reason": "required for operators"}]
    }


BAD_PERIODS: list[tuple[dict[str, str], str, str | None]] = [
    (
        {"resolution": "week"},
        "query.resolution",
        "Input should be 'quarter_hour', 'day' or 'month'",
    ),
    ({"start": "2026-11-24", "end": "2026-11-24"}, "query.end", "must be after start"),
    ({"start": "24.11.2026"}, "query.start", None),
    (
        {"resolution": "quarter_hour", "start": "2026-01-01", "end": "2026-03-01"},
        "query.end",
        "at most 31 days at resolution quarter_hour",
    ),
]


async def test_bad_period_parameters_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    for params, field, reason in BAD_PERIODS:
        r = await client.get("/api/v1/members/m01/balances", params=params, headers=bearer("anna"))
        assert r.status_code == 422, params
        [err] = r.json()["detail"]
        assert err["field"] == field
        if reason is not None:
            assert err["reason"] == reason


async def test_deletion_request_is_audited_once_per_idempotency_key(
    client: httpx.AsyncClient, store: Store
) -> None:
    headers = {**bearer("anna"), "Idempotency-Key": "del-1"}
    url = "/api/v1/members/m01/deletion-request"
    first = await client.post(url, json={"note": "bye"}, headers=headers)
    again = await client.post(url, json={"note": "bye"}, headers=headers)
    other = await client.post(url, json={"note": "changed"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    records = await store.audit.records()
    assert [(r.entry.actor, r.entry.action, r.entry.target) for r in records] == [
        ("anna", "gdpr.deletion_requested", "member:m01")
    ]
    assert records[0].entry.new_value == {"note": "bye"}
    assert first.json()["audit_id"] == records[0].id


async def test_latest_intervals_agree_with_the_store_after_restatements(store: Store) -> None:
    t = DAY_START
    first = [Interval("m01", ch, t + k * QH, Decimal(k)) for k in range(8) for ch in ("a", "b")]
    await store.intervals.record(first, now=NOW)
    await store.intervals.record(
        [Interval("m01", "a", t + 2 * QH, Decimal("2.5"), Quality.SUBSTITUTE)], now=NOW
    )
    await store.intervals.record([Interval("m01", "a", t + 2 * QH, Decimal("3.25"))], now=NOW)
    await store.intervals.record([Interval("m02", "a", t, Decimal(99))], now=NOW)
    mine = await store.balances.intervals("m01", t, t + 6 * QH)
    stored = await store.intervals.for_member("m01", t, t + 6 * QH)
    assert [(v.interval_start, v.channel, v.energy_wh, v.quality) for v in mine] == [
        (s.interval.interval_start, s.interval.channel, s.interval.energy_wh, s.interval.quality)
        for s in stored
    ]
    assert [v.energy_wh for v in mine if v.channel == "a"] == [
        Decimal(0),
        Decimal(1),
        Decimal("3.25"),
        Decimal(3),
        Decimal(4),
        Decimal(5),
    ]
