"""A member's deletion request, seen and carried out by an operator: the accounts and the raw
readings of the member's devices go, intervals, statements and audit records stay (and say
why), the erasure is audited and idempotent, and a member still in a community is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.runtime import LightingControl
from kernel.clock import ManualClock
from kernel.readings import Reading
from scheduler.health import Readiness
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.site import Site, load_site_text
from store import Store
from store.intervals import Interval
from tests.api.conftest import AUDIT, FAST_HASHER, NOW, bearer, login, settings_for
from tests.scheduler.test_site import SITE

pytestmark = pytest.mark.usefixtures("accounts")

#: The test site with the accounts' members: m01 left the community in October, m02 is in it.
PRIVACY_SITE = (
    SITE.replace("id: a\n", "id: m01\n")
    .replace("id: b\n", "id: m02\n")
    .replace("{member: a}", '{member: m01, left: "2026-10-01T00:00:00+02:00"}')
    .replace("{member: b, joined", "{member: m02, joined")
    .replace('shares: {a: "0.5", b: "0.25"}', 'shares: {m01: "0.5", m02: "0.25"}')
)


@dataclass
class SiteRuntime:
    """A runtime with the privacy test's site (no lighting, no cycle yet)."""

    site: Site | None
    clock: ManualClock = field(default_factory=lambda: ManualClock(NOW))
    metrics: Metrics = field(default_factory=Metrics)
    lighting: LightingControl | None = None

    async def readiness(self) -> Readiness:
        return Readiness(())

    def live(self) -> LiveView:
        return LiveView(None)


@pytest.fixture
async def client(store: Store, store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    runtime = SiteRuntime(load_site_text(PRIVACY_SITE, "site.yaml"))
    app: FastAPI = create_app(settings_for(store_url), runtime=runtime, store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def reading(device: str, minutes: int) -> Reading:
    return Reading(
        device, "import_energy_wh", 1000.0 + minutes, "Wh", NOW - timedelta(minutes=minutes)
    )


async def seed_readings_and_an_interval(store: Store) -> None:
    """Three raw readings of m01's devices (a-*), of a meter the site no longer names
    (old-meter) and of another member's meter (b-meter); one interval of m01."""
    await store.readings.write(
        [reading(d, m) for d in ("a-meter", "a-pv", "a-bat", "old-meter", "b-meter")
         for m in (1, 2, 3)],
        now=NOW,
    )  # fmt: skip
    await store.intervals.record(
        [Interval("m01", "import_energy_wh", NOW.replace(minute=0), Decimal(5))], now=NOW
    )


async def check_gone_and_kept(client: httpx.AsyncClient, store: Store, anna: str) -> None:
    """Gone: the account (its token no longer works) and the devices' raw readings. Kept:
    another member's readings, the member's intervals, the audit trail (verified)."""
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {anna}"})
    assert me.status_code == 401
    assert await store.users.get("anna") is None
    for device in ("a-meter", "a-pv", "a-bat", "old-meter"):
        assert await store.readings.count(device) == 0
    assert await store.readings.count("b-meter") == 3
    assert await store.intervals.for_member(
        "m01", NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    )
    records = [r.entry for r in await store.audit.records()]
    assert [(e.actor, e.action, e.target) for e in records] == [
        ("anna", "gdpr.deletion_requested", "member:m01"),
        ("olga", "gdpr.erased", "member:m01"),
    ]
    assert records[1].new_value["readings_deleted"] == 12
    assert (await store.audit.verify(AUDIT)).ok


async def test_a_request_is_listed_then_erased_as_far_as_no_duty_keeps_the_data(
    client: httpx.AsyncClient, store: Store
) -> None:
    await seed_readings_and_an_interval(store)
    anna = await login(client, "anna")  # m01's account
    asked = await client.post(
        "/api/v1/members/m01/deletion-request",
        json={"note": "bitte löschen"},
        headers={"Authorization": f"Bearer {anna}"},
    )
    assert asked.status_code == 202
    olga = bearer("olga")
    [pending] = (await client.get("/api/v1/privacy/deletion-requests", headers=olga)).json()
    assert pending["member_id"] == "m01"
    assert pending["status"] == "open"
    assert pending["requested_by"] == "anna"
    assert pending["note"] == "bitte löschen"

    body = {"member_id": "m01", "devices": ["old-meter"], "reason": "request of today"}
    key = {"Idempotency-Key": "erase-m01"}
    done = await client.post("/api/v1/privacy/erasures", json=body, headers=olga | key)
    assert done.status_code == 201, done.text
    erased = done.json()
    assert erased["accounts_deleted"] == ["anna"]
    assert erased["devices"] == ["a-bat", "a-meter", "a-pv", "old-meter"]
    assert erased["readings_deleted"] == 12
    assert {r["what"] for r in erased["retained"]} == {
        "quarter-hour intervals and settlement statements",
        "audit records naming the member's accounts",
    }
    # the same request again replays the first answer; nothing is erased twice
    again = await client.post("/api/v1/privacy/erasures", json=body, headers=olga | key)
    assert again.json() == erased
    assert again.headers.get("Idempotent-Replayed") == "true"

    await check_gone_and_kept(client, store, anna)
    [after] = (await client.get("/api/v1/privacy/deletion-requests", headers=olga)).json()
    assert after["status"] == "erased"
    assert after["erased_by"] == "olga"
    assert after["erasure_audit_id"] == erased["audit_id"]


async def test_a_member_still_in_a_community_is_not_erased(
    client: httpx.AsyncClient, store: Store
) -> None:
    olga = bearer("olga")
    refused = await client.post(
        "/api/v1/privacy/erasures", json={"member_id": "m02", "reason": "x"}, headers=olga
    )
    assert refused.status_code == 409
    assert "community 'q'" in refused.json()["detail"]
    assert await store.users.get("ben") is not None  # m02's account is still there
    assert await store.audit.records() == []


async def test_bad_erasure_requests_name_the_field(client: httpx.AsyncClient) -> None:
    olga = bearer("olga")
    for body, field_name in [
        ({"member_id": "m01"}, "body.reason"),
        ({"member_id": "m 01", "reason": "x"}, "body.member_id"),
        ({"member_id": "m01", "reason": "x", "devices": [""]}, "body.devices.0"),
        ({"member_id": "m01", "reason": "x", "everything": True}, "body.everything"),
    ]:
        r = await client.post("/api/v1/privacy/erasures", json=body, headers=olga)
        assert r.status_code == 422, body
        assert field_name in [d["field"] for d in r.json()["detail"]], r.json()
