"""Fixtures of the page tests: the app on a SQLite store seeded with a member's day, a plan,
an alarm and the demo's lighting, an HTTP client per role logged in through the login form.

The runtime is the smallest one the pages read (a clock, and a real site with a member, a
community and the lighting section); the Chromium tests (``test_browser.py``) run the real
demo service instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.accounts import add_user
from api.app import create_app
from api.auth import Role
from api.runtime import LightingControl
from kernel.clock import ManualClock
from scheduler.health import Readiness
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.settings import Settings
from scheduler.site import Site, site_from_data
from sims.demo_site import DEFAULT_LIGHTING, demo_lighting_data
from sims.town import StreetSpec, TownConfig
from store import Store
from store.intervals import Interval
from store.settlement import Statement
from tests.api.conftest import AUDIT_KEY, FAST_HASHER, PASSWORD, SECRET

#: 2026-11-25 13:00 Europe/Berlin; the local day began at 2026-11-24 23:00 UTC.
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DAY_START = datetime(2026, 11, 24, 23, tzinfo=UTC)
QH = timedelta(minutes=15)
COMMUNITY = "c1"
MEMBERS = [f"m0{i}" for i in range(1, 7)]

ACCOUNTS: dict[str, tuple[Role, str | None]] = {
    "olga": (Role.OPERATOR, None),
    "anna": (Role.MEMBER, "m01"),
    "ben": (Role.MEMBER, "m02"),
    "lena": (Role.LIGHTING_ENGINEER, None),
    "aldo": (Role.AUDITOR, None),
}
ROLE_USER = {
    Role.OPERATOR: "olga",
    Role.MEMBER: "anna",
    Role.LIGHTING_ENGINEER: "lena",
    Role.AUDITOR: "aldo",
}
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def lighting_data() -> dict[str, Any]:
    town = TownConfig(
        name="Testdorf",
        streets=[
            StreetSpec(name="waldweg", luminaires=4, rated_power_w=30.0,
                       sensor_dev_eui="70b3d57ed0009901"),
        ],
    )  # fmt: skip
    return demo_lighting_data(town, DEFAULT_LIGHTING)


def page_site() -> Site:
    """The site the pages read: member m01 (a grid meter and a battery) in community c1, and
    the lighting of one street of four luminaires."""
    return site_from_data(
        {
            "site": {"name": "Testdorf", "latitude": 51.37, "longitude": 7.70},
            "devices": [
                {"name": "m01-meter", "driver": "eastron_sdm630", "host": "127.0.0.1",
                 "unit_id": 1},
                {"name": "m01-battery", "driver": "battery_inverter", "host": "127.0.0.1",
                 "unit_id": 2},
            ],
            "tariffs": [
                {"name": "t2026", "valid_from": "2026-01-01T00:00:00+01:00",
                 "supplier_price_eur_per_kwh": "0.32", "community_price_eur_per_kwh": "0.22",
                 "feed_in_price_eur_per_kwh": "0.08"},
            ],
            "members": [
                {"id": "m01", "name": "Anna", "meter": "m01-meter",
                 "battery": {"device": "m01-battery", "capacity_wh": 10000,
                             "max_charge_w": 5000, "max_discharge_w": 5000}},
            ],
            "communities": [
                {"id": COMMUNITY, "name": "Testdorf", "members": [{"member": "m01"}],
                 "keys": [{"kind": "dynamic"}], "tariffs": ["t2026"]},
            ],
            "lighting": lighting_data(),
        },
        "pages-site.yaml",
    )  # fmt: skip


@dataclass
class PageRuntime:
    """A clock and the site of :func:`page_site`, no lighting running and no cycle run yet
    (the live views say so)."""

    clock: ManualClock = field(default_factory=lambda: ManualClock(NOW))
    metrics: Metrics = field(default_factory=Metrics)
    site: Site | None = field(default_factory=page_site)
    lighting: LightingControl | None = None
    view: LiveView = field(default_factory=lambda: LiveView(None))

    async def readiness(self) -> Readiness:
        return Readiness(())

    def live(self) -> LiveView:
        return self.view


def figures(member: str, qhs: int) -> Statement:
    """The member's day so far after ``qhs`` quarter-hours (cumulative)."""
    k = 1 + MEMBERS.index(member)
    return Statement(
        member_id=member,
        consumption_wh=Decimal(300 * k * qhs),
        generation_wh=Decimal(120 * qhs),
        shared_received_wh=Decimal(80 * qhs),
        shared_delivered_wh=Decimal(40 * qhs),
        grid_import_wh=Decimal(300 * k * qhs - 80 * qhs - 120 * qhs + 40 * qhs),
        grid_export_wh=Decimal(0),
        amount_eur=Decimal("0.05") * qhs * k,
        co2_g=Decimal(30 * qhs),
    )


def plan_payload() -> dict[str, Any]:
    n = 8
    return {
        "plan_id": "p1",
        "community_id": COMMUNITY,
        "start": NOW.isoformat(),
        "n_qh": n,
        "status": "optimal",
        "objective_eur": 1.25,
        "assets": [
            {"member_id": "m01", "asset_id": "m01-battery", "kind": "battery",
             "power_w": [1000.0] * n, "soc_wh": [5000.0 + 250 * i for i in range(n)],
             "rated_power_w": None, "nominal_power_w": None, "limit_w": None},
            {"member_id": "m02", "asset_id": "m02-ev", "kind": "ev",
             "power_w": [11000.0] * 4 + [0.0] * 4, "soc_wh": None,
             "rated_power_w": None, "nominal_power_w": None, "limit_w": None},
        ],
        "members": [{"member_id": m, "import_wh": [500.0] * n, "export_wh": [100.0] * n}
                    for m in MEMBERS],
        "shared_wh": [300.0] * n,
        "violations": [{"constraint": "feeder_limit", "amount_wh": 1500.0, "member_id": None,
                        "asset_id": None, "qh": 3}],
        "alarms": [],
        "notes": [],
    }  # fmt: skip


async def seed(store: Store) -> None:
    for username, (role, member_id) in ACCOUNTS.items():
        await add_user(
            store, username, PASSWORD, role, now=NOW, member_id=member_id, hasher=FAST_HASHER
        )
    intervals = []
    for q in range(48):
        t = DAY_START + q * QH
        for m in MEMBERS:
            intervals.append(Interval(m, "import_energy_wh", t, Decimal(200)))
            intervals.append(Interval(m, "export_energy_wh", t, Decimal(10)))
    await store.intervals.record(intervals, now=NOW)
    # provisional versions of the day so far: through 00:15, 00:30, 00:45 and 01:30 local
    for qhs in (1, 2, 3, 6):
        through = DAY_START + qhs * QH
        await store.settlement.append(
            COMMUNITY,
            DAY_START,
            DAY_START + timedelta(days=1),
            [figures(m, qhs) for m in MEMBERS],
            reason="provisional",
            now=NOW,
            details={"kind": "provisional", "through": through.isoformat()},
        )
    await store.plans.insert(COMMUNITY, NOW, plan_payload(), created_by="test", now=NOW)
    await store.alarms.raise_alarm(
        "device:m03-meter:communication_lost",
        source="m03-meter",
        kind="communication_lost",
        severity="warning",
        message="m03-meter does not answer",
        now=NOW,
    )


@pytest.fixture
async def web_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as store:
        await seed(store)
        yield store


@pytest.fixture
def app(web_store: Store, tmp_path: Path) -> FastAPI:
    settings = Settings(
        mode="production",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'web.db'}",
        secret_key=SECRET,  # type: ignore[arg-type]
        audit_key=AUDIT_KEY,  # type: ignore[arg-type]
        timezone="Europe/Berlin",
    )
    app = create_app(settings, store=web_store, runtime=PageRuntime())
    app.state.waldstadt.hasher = FAST_HASHER
    return app


def client_for(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://waldstadt.test", headers=headers
    )


async def form_login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the login page; returns the redirect target."""
    page = await client.get("/login")
    assert page.status_code == 200
    match = CSRF_RE.search(page.text)
    assert match is not None
    r = await client.post(
        "/login", data={"username": username, "password": password, "csrf": match.group(1)}
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


@pytest.fixture
async def clients(app: FastAPI) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """A logged-in client per account, and ``None`` → an anonymous one (key ``""``)."""
    out: dict[str, httpx.AsyncClient] = {}
    try:
        for username in ACCOUNTS:
            c = client_for(app)
            await form_login(c, username)
            out[username] = c
        out[""] = client_for(app)
        yield out
    finally:
        for c in out.values():
            await c.aclose()
