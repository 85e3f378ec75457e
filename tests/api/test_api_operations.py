"""Operators: plans with status and violations, overrides (audited, idempotent), commands,
alarms, settlement runs; auditors: the audit trail, and tampering found through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from store import Store
from store.engine import write_tx
from store.settlement import Statement
from tests.api.conftest import FAST_HASHER, NOW, TinyRuntime, bearer, settings_for

pytestmark = pytest.mark.usefixtures("accounts")
QH = timedelta(minutes=15)


@pytest.fixture
def runtime() -> TinyRuntime:
    return TinyRuntime()


@pytest.fixture
async def ops(
    store: Store, store_url: str, runtime: TinyRuntime
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose service clock stands at NOW."""
    app: FastAPI = create_app(settings_for(store_url), runtime=runtime, store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def plan_doc(status: str, violations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "plan_id": f"c1-{status}",
        "status": status,
        "objective_eur": 12.5,
        "n_qh": 96,
        "violations": violations,
        "alarms": [],
        "assets": [{"member_id": "h01", "asset_id": "h01-battery", "power_w": [0.0] * 96}],
        "notes": ["forecast from yesterday"],
    }


async def test_plans_show_status_and_violated_soft_constraints(
    ops: httpx.AsyncClient, store: Store
) -> None:
    feeder = {
        "constraint": "feeder_limit",
        "amount_wh": 120.0,
        "member_id": None,
        "asset_id": None,
        "qh": 3,
    }
    past = await store.plans.insert(
        "c1", NOW - 2 * QH, plan_doc("optimal", []), created_by="a", now=NOW
    )
    current = await store.plans.insert(
        "c1", NOW - QH, plan_doc("optimal_relaxed", [feeder]), created_by="a", now=NOW
    )
    await store.plans.insert("c1", NOW + QH, plan_doc("optimal", []), created_by="a", now=NOW)
    headers = bearer("olga")
    r = await ops.get("/api/v1/plans/current", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == current.plan.id
    assert body["status"] == "optimal_relaxed"
    assert body["violations"] == [feeder]
    assert body["notes"] == ["forecast from yesterday"]
    assert body["payload"]["assets"][0]["asset_id"] == "h01-battery"
    r = await ops.get(
        "/api/v1/plans",
        params={"since": (NOW - timedelta(hours=1)).isoformat(), "until": NOW.isoformat()},
        headers=headers,
    )
    assert [(p["id"], p["status"]) for p in r.json()["plans"]] == [
        (past.plan.id, "optimal"),
        (current.plan.id, "optimal_relaxed"),
    ]
    assert (await ops.get(f"/api/v1/plans/{past.plan.id}", headers=headers)).json()[
        "status"
    ] == "optimal"
    assert (await ops.get("/api/v1/plans/999999", headers=headers)).status_code == 404
    r = await ops.get("/api/v1/plans", params={"since": "2026-11-25T10:00:00"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "query.since"


async def test_override_is_stored_audited_and_done_once_per_key(
    ops: httpx.AsyncClient, store: Store, runtime: TinyRuntime
) -> None:
    headers = {**bearer("olga"), "Idempotency-Key": "ov-1"}
    body = {
        "target": "h01-battery",
        "kind": "battery_power_w",
        "value": -2000,
        "expires_in_s": 900,
        "reason": "test",
    }
    first = await ops.post("/api/v1/commands/overrides", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await ops.post("/api/v1/commands/overrides", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    cmd = first.json()
    assert cmd["status"] == "pending"
    assert cmd["value"]["kind"] == "battery_power_w"
    assert cmd["value"]["value"] == -2000
    assert cmd["value"]["source"] == "override:olga"
    assert cmd["value"]["revert_s"] == 900  # no site at hand: the default revert time
    assert cmd["expires_at"] == (NOW + timedelta(seconds=900)).isoformat().replace("+00:00", "Z")
    runtime.clock.advance(60)
    second = await ops.post(
        "/api/v1/commands/overrides",
        json={**body, "value": 0},
        headers={**bearer("olga"), "Idempotency-Key": "ov-2"},
    )
    assert second.status_code == 201
    records = await store.audit.records()
    assert [(r.entry.actor, r.entry.role, r.entry.action, r.entry.target) for r in records] == [
        ("olga", "operator", "command.override", "h01-battery")
    ] * 2
    assert records[0].entry.old_value is None
    assert records[0].entry.command_id == cmd["command_id"]
    assert records[1].entry.old_value == {
        "command_id": cmd["command_id"],
        "kind": "battery_power_w",
        "value": -2000,
    }
    assert records[1].entry.new_value["kind"] == "battery_power_w"
    assert records[1].entry.new_value["value"] == 0
    listed = await ops.get("/api/v1/commands", headers=bearer("olga"))
    assert [c["command_id"] for c in listed.json()] == [
        second.json()["command_id"],
        cmd["command_id"],
    ]
    one = await ops.get(f"/api/v1/commands/{cmd['command_id']}", headers=bearer("olga"))
    assert one.json() == cmd
    assert (await ops.get("/api/v1/commands/nope", headers=bearer("olga"))).status_code == 404


async def test_bad_override_is_422_naming_each_field(ops: httpx.AsyncClient, store: Store) -> None:
    r = await ops.post(
        "/api/v1/commands/overrides",
        json={"target": "bad target!", "value": 1, "expires_in_s": 5},
        headers=bearer("olga"),
    )
    assert r.status_code == 422
    fields = {e["field"]: e["reason"] for e in r.json()["detail"]}
    assert set(fields) == {"body.target", "body.kind", "body.expires_in_s", "body.reason"}
    assert fields["body.expires_in_s"] == "Input should be greater than or equal to 60"
    # a value outside its kind's range names the value, the range and the kind
    r = await ops.post(
        "/api/v1/commands/overrides",
        json={
            "target": "h01-pv",
            "kind": "power_limit_pct",
            "value": 140,
            "expires_in_s": 600,
            "reason": "t",
        },
        headers=bearer("olga"),
    )
    assert r.status_code == 422
    [err] = r.json()["detail"]
    assert err["field"] == "body.value"
    assert "140 is outside 0..100 for power_limit_pct" in err["reason"]
    assert await store.commands.live(NOW) == []
    assert await store.audit.records() == []


async def test_alarms_active_and_history(ops: httpx.AsyncClient, store: Store) -> None:
    await store.alarms.raise_alarm(
        "device:inv-7:lost",
        source="inv-7",
        kind="communication_lost",
        severity="warning",
        message="no answer",
        now=NOW - QH,
    )
    await store.alarms.raise_alarm(
        "lamp:w-3:failed",
        source="w-3",
        kind="lamp_failure",
        severity="critical",
        message="lamp failed",
        now=NOW - QH,
    )
    await store.alarms.clear_alarm("device:inv-7:lost", message="back", now=NOW)
    active = (await ops.get("/api/v1/alarms", headers=bearer("lena"))).json()
    assert [(a["alarm_key"], a["severity"]) for a in active] == [("lamp:w-3:failed", "critical")]
    history = (await ops.get("/api/v1/alarms/history", headers=bearer("olga"))).json()
    assert [(a["alarm_key"], a["event"]) for a in history] == [
        ("device:inv-7:lost", "clear"),
        ("lamp:w-3:failed", "raise"),
        ("device:inv-7:lost", "raise"),
    ]


async def test_settlement_runs_list_versions_and_statements(
    ops: httpx.AsyncClient, store: Store
) -> None:
    day = NOW.replace(hour=0) - timedelta(days=1)

    def st(member: str, eur: str) -> Statement:
        z = Decimal(0)
        return Statement(member, Decimal(1000), z, Decimal(400), z, Decimal(600), z, Decimal(eur))

    v1 = await store.settlement.append(
        "c1",
        day,
        day + timedelta(days=1),
        [st("h01", "0.5"), st("h02", "0.7")],
        reason="final",
        now=NOW,
    )
    v2 = await store.settlement.append(
        "c1",
        day,
        day + timedelta(days=1),
        [st("h01", "0.4"), st("h02", "0.7")],
        reason="restated",
        now=NOW,
    )
    runs = (await ops.get("/api/v1/settlement/runs", headers=bearer("olga"))).json()
    assert [(r["id"], r["version"], r["current"], r["members"]) for r in runs] == [
        (v2.id, 2, True, 2),
        (v1.id, 1, False, 2),
    ]
    detail = (await ops.get(f"/api/v1/settlement/runs/{v2.id}", headers=bearer("olga"))).json()
    assert [(s["member_id"], s["figures"]["amount_eur"]) for s in detail["statements"]] == [
        ("h01", "0.40"),
        ("h02", "0.70"),
    ]
    assert (
        await ops.get("/api/v1/settlement/runs/99999", headers=bearer("olga"))
    ).status_code == 404


async def tamper(store: Store, sql: str) -> None:
    """What someone with database admin rights could do: switch the triggers off first."""
    async with write_tx(store.engine, "tamper") as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            await conn.execute(text(sql))
            await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER audit_log_no_update"))
            await conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            await conn.execute(text(sql))


@pytest.mark.parametrize(
    ("sql", "bad", "reason"),
    [
        (
            'UPDATE audit_log SET new_value = \'{"value": {"power_w": 5000}}\' WHERE id = {id}',
            1,
            "edited",
        ),
        ("DELETE FROM audit_log WHERE id = {id}", 2, "removed"),
    ],
)
async def test_auditor_finds_an_edited_or_deleted_record(
    ops: httpx.AsyncClient, store: Store, sql: str, bad: int, reason: str
) -> None:
    for i in range(3):
        r = await ops.post(
            "/api/v1/commands/overrides",
            json={
                "target": f"h0{i}-battery",
                "kind": "battery_power_w",
                "value": i,
                "expires_in_s": 600,
                "reason": "t",
            },
            headers=bearer("olga"),
        )
        assert r.status_code == 201
    auditor = bearer("aldo")
    page = (await ops.get("/api/v1/audit/records", params={"limit": 2}, headers=auditor)).json()
    assert [r["target"] for r in page["records"]] == ["h00-battery", "h01-battery"]
    assert page["next_after_id"] == page["records"][1]["id"]
    ok = (await ops.get("/api/v1/audit/verify", headers=auditor)).json()
    assert ok["ok"] is True
    assert ok["checked"] == 3
    ids = [r.id for r in await store.audit.records()]
    await tamper(store, sql.replace("{id}", str(ids[1])))
    report = (await ops.get("/api/v1/audit/verify", headers=auditor)).json()
    assert report["ok"] is False
    assert report["bad_id"] == ids[bad]
    assert reason in report["reason"]


async def test_without_a_running_service_assets_and_community_now_say_so(
    ops: httpx.AsyncClient,
) -> None:
    olga = bearer("olga")
    listed = await ops.get("/api/v1/assets", headers=olga)
    assert listed.status_code == 200
    assert listed.json() == {
        "service_running": False,
        "at": None,
        "total": 0,
        "available": 0,
        "assets": [],
    }
    one = await ops.get("/api/v1/assets/h01-battery", headers=olga)
    assert one.status_code == 404
    assert "no running service" in one.json()["detail"]
    now = await ops.get("/api/v1/community/now", headers=olga)
    assert now.status_code == 404
    bad = await ops.get("/api/v1/assets", params={"role": "toaster"}, headers=olga)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "query.role"
    assert (await ops.get("/api/v1/assets", headers=bearer("lena"))).status_code == 403
