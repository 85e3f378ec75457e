"""The operator's page through the ASGI app: the plan, alarms and assets, an override through
the API's audited route, and the members' open deletion requests."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from scheduler.live import LiveView
from store import Store
from tests.api.conftest import PASSWORD
from tests.web.conftest import CSRF_RE


async def test_the_operator_sees_plan_alarms_and_assets(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    olga = clients["olga"]
    page = await olga.get("/operator")
    text = page.text
    assert "optimal" in text
    assert "feeder_limit" in text
    assert "m03-meter does not answer" in text
    assert '"m01-battery": [5.0, 5.25' in text  # the battery's state of charge in kWh
    assert '"m02-ev": [11.0' in text
    # the site's meter and battery: no cycle has run, so neither is known to answer
    assert '<span data-key="available">0</span>/2' in text
    assert "no cycle has run yet" in text
    # the battery of the site's member may be overridden, its grid meter may not
    assert '<option value="m01-battery">' in text
    assert '<option value="m01-meter">' not in text


async def test_a_stale_plan_and_a_slowed_clock_are_marked_not_shown_as_current(
    app: FastAPI, clients: dict[str, httpx.AsyncClient]
) -> None:
    olga = clients["olga"]
    assert "VERALTET" not in (await olga.get("/operator")).text  # the plan of this quarter-hour
    runtime = app.state.waldstadt.runtime
    runtime.clock.advance(2 * 3600)  # no plan since: the newest one is two hours old
    runtime.view = LiveView(None, speed=40.0, target_speed=144.0, slowed="cycles overran")
    text = (await olga.get("/operator")).text
    assert "VERALTET: seit 120 min kein neuer Fahrplan" in text
    assert "Simulation verlangsamt auf 40× (statt 144×) — der Rechner ist ausgelastet" in text
    olga.cookies.set("waldstadt_lang", "en")
    english = (await olga.get("/operator")).text
    assert "STALE: no new plan for 120 min" in english
    assert "Simulation slowed to 40× (of 144×) — the machine is busy" in english


async def post_override(olga: httpx.AsyncClient, **form: str) -> httpx.Response:
    """The operator page's override form: 2 kW discharge of m01's battery for 30 min, with the
    fields in ``form`` changed, and the page's CSRF token."""
    token = CSRF_RE.search((await olga.get("/operator")).text)
    assert token is not None
    data = {"target": "m01-battery", "kind": "battery_power_w", "value": "-2000",
            "expires_min": "30", "reason": "x", "csrf": token.group(1)}  # fmt: skip
    return await olga.post("/operator/override", data=data | form)


async def test_an_override_goes_through_the_audited_route(
    clients: dict[str, httpx.AsyncClient], web_store: Store
) -> None:
    olga = clients["olga"]
    bad = await post_override(olga, value="viel")
    assert bad.status_code == 422
    assert "<code>value</code>" in bad.text
    short = await post_override(olga, expires_min="0.5")
    assert short.status_code == 422
    assert "expires_in_s" in short.text
    elsewhere = await post_override(olga, target="m09-battery")
    assert elsewhere.status_code == 422  # the site has no such device
    assert "<code>body.target</code>" in elsewhere.text
    assert "no device &#39;m09-battery&#39; in the site" in elsewhere.text
    r = await post_override(olga, reason="Wartung Ortsnetz")
    assert r.status_code == 303
    command_id = r.headers["location"].split("override=")[1]
    stored = await web_store.commands.get(command_id)
    assert stored is not None
    assert (stored.command.expires_at - stored.command.issued_at).total_seconds() == 1800
    records = await web_store.audit.records(0, 100)
    last = records[-1].entry
    assert (last.action, last.actor, last.command_id) == ("command.override", "olga", command_id)
    assert last.new_value["value"] == -2000
    assert last.new_value["reason"] == "Wartung Ortsnetz"
    after = await olga.get(r.headers["location"])
    assert command_id in after.text
    assert "m01-battery" in after.text


async def test_the_operator_page_lists_open_deletion_requests(
    clients: dict[str, httpx.AsyncClient], web_store: Store
) -> None:
    olga = clients["olga"]
    assert 'id="deletion-requests"' not in (await olga.get("/operator")).text
    login = await clients[""].post(
        "/api/v1/auth/token", data={"username": "anna", "password": PASSWORD}
    )
    token = login.json()["access_token"]  # an API token (her page session is not one)
    asked = await clients["anna"].post(
        "/api/v1/members/m01/deletion-request",
        json={"note": "Bitte alles löschen"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert asked.status_code == 202, asked.text
    page = (await olga.get("/operator")).text
    assert 'id="deletion-requests"' in page
    assert "<code>m01</code>" in page
    assert "Bitte alles löschen" in page
