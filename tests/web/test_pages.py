"""The pages through the ASGI app: who may open what, login and session, the language, CSRF,
the member's figures and privacy, the audit log. The operator's and the lighting engineer's
pages: ``test_pages_operator.py``, ``test_pages_lighting.py``."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
from fastapi import FastAPI

from api.web.i18n import check_catalogue, parse_accept_language
from api.web.render import safe_next
from store import Store
from tests.api.conftest import AUDIT
from tests.web.conftest import ACCOUNTS, CSRF_RE, MEMBERS, client_for, form_login

#: page → the accounts that may open it
ALLOWED = {
    "/member": {"anna", "ben"},
    "/operator": {"olga"},
    "/lighting": {"lena"},
    "/audit": {"aldo", "olga"},
}


@pytest.mark.parametrize("page", sorted(ALLOWED))
async def test_each_page_for_each_role_and_without_a_session(
    clients: dict[str, httpx.AsyncClient], page: str
) -> None:
    anonymous = await clients[""].get(page)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next=%2F{page[1:]}"
    for username in ACCOUNTS:
        r = await clients[username].get(page)
        if username in ALLOWED[page]:
            assert r.status_code == 200, (username, page, r.text[:300])
            assert r.headers["content-type"].startswith("text/html")
            assert "no-store" in r.headers["cache-control"]
        else:
            assert r.status_code == 403, (username, page)


async def test_login_sets_an_httponly_lax_cookie_and_lands_on_the_role_page(app: FastAPI) -> None:
    async with client_for(app) as c:
        page = await c.get("/login")
        token = CSRF_RE.search(page.text)
        assert token is not None
        r = await c.post(
            "/login",
            data={
                "username": "olga",
                "password": "correct horse battery",
                "csrf": token.group(1),
                "next": "/audit",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/audit"
        cookie = next(
            v
            for k, v in r.headers.multi_items()
            if k == "set-cookie" and v.startswith("waldstadt_session=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert (await c.get("/")).headers["location"] == "/operator"
        # the page session is not an API token (with or without CSRF)
        session = c.cookies["waldstadt_session"]
        me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {session}"})
        assert me.status_code == 401
        assert me.json()["detail"] == "a page session token is not valid here"
        # logout needs the CSRF token; then the pages redirect again
        out = await c.post("/logout", data={"csrf": "0" * 64})
        assert out.status_code == 403
        ops = await c.get("/operator")
        token = CSRF_RE.search(ops.text)
        assert token is not None
        out = await c.post("/logout", data={"csrf": token.group(1)})
        assert out.status_code == 303
        assert (await c.get("/operator")).status_code == 303
        # the logout ended the session on the server: a copy of the cookie is dead too
        c.cookies.set("waldstadt_session", session)
        assert (await c.get("/operator")).status_code == 303


async def test_a_wrong_password_is_refused_in_the_page(app: FastAPI) -> None:
    async with client_for(app) as c:
        page = await c.get("/login")
        token = CSRF_RE.search(page.text)
        assert token is not None
        r = await c.post(
            "/login", data={"username": "anna", "password": "nope", "csrf": token.group(1)}
        )
        assert r.status_code == 401
        assert "Benutzername oder Passwort falsch" in r.text
        assert "waldstadt_session" not in c.cookies


async def test_posts_without_the_csrf_token_are_refused(
    app: FastAPI, clients: dict[str, httpx.AsyncClient], web_store: Store
) -> None:
    async with client_for(app) as c:
        await c.get("/login")
        r = await c.post("/login", data={"username": "anna", "password": "correct horse battery"})
        assert r.status_code == 403
        assert "waldstadt_session" not in c.cookies
        # a token from another browser's page does not fit this one's pre-session
        other = CSRF_RE.search((await clients[""].get("/login")).text)
        assert other is not None
        r = await c.post(
            "/login",
            data={"username": "anna", "password": "correct horse battery", "csrf": other.group(1)},
        )
        assert r.status_code == 403
    before = await web_store.audit.verify(AUDIT)
    olga = clients["olga"]
    r = await olga.post(
        "/operator/override",
        data={
            "target": "m01-battery",
            "kind": "battery_power_w",
            "value": "-2000",
            "expires_min": "30",
            "reason": "test",
        },
    )
    assert r.status_code == 403
    assert (await web_store.audit.verify(AUDIT)).checked == before.checked
    preview = await clients["lena"].post(
        "/lighting/preview", json={"segment": "waldweg", "night": "2026-11-25"}
    )
    assert preview.status_code == 403


async def test_german_by_default_english_by_header_and_the_switch_sticks(
    app: FastAPI, clients: dict[str, httpx.AsyncClient]
) -> None:
    anna = clients["anna"]
    page = await anna.get("/member")
    assert '<html lang="de">' in page.text
    assert "Verbrauch" in page.text
    async with client_for(app, **{"Accept-Language": "en-GB,en;q=0.9,de;q=0.5"}) as c:
        login = await c.get("/login")
        assert '<html lang="en">' in login.text
        assert "Log in" in login.text
    switched = await anna.get("/lang/en", params={"next": "/member"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/member"
    page = await anna.get("/member")
    assert '<html lang="en">' in page.text
    assert "Consumption" in page.text
    assert "Verbrauch" not in page.text
    # the cookie wins over the header
    page = await anna.get("/member", headers={"Accept-Language": "de"})
    assert '<html lang="en">' in page.text
    # an unknown language changes nothing, an outside target is not followed
    r = await anna.get("/lang/fr", params={"next": "https://evil.example/"})
    assert r.headers["location"] == "/"
    assert '<html lang="en">' in (await anna.get("/member")).text


def test_the_catalogue_has_every_text_in_both_languages_and_parsing_is_sane() -> None:
    assert check_catalogue() == []
    assert parse_accept_language("fr-FR, en;q=0.8, de;q=0.9") == "de"
    assert parse_accept_language("fr") is None
    assert parse_accept_language("en;q=0, de;q=0.1") == "de"
    assert safe_next("//evil.example/x") == "/"
    assert safe_next("/member?x=1") == "/member?x=1"


async def test_the_member_sees_own_figures_per_quarter_hour_and_no_other_member(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    page = (await clients["anna"].get("/member")).text
    data = re.search(r'<script type="application/json" id="member-data">(.*?)</script>', page)
    assert data is not None
    import json

    chart = json.loads(data.group(1))["chart"]
    assert chart["source"] == "settled"
    assert len(chart["times"]) == 96
    consumption = chart["series"]["consumption"]
    # m01 consumes 300 Wh per quarter-hour; the run through 01:30 covered three at once
    assert consumption[:6] == [0.3] * 6
    assert consumption[6] is None
    assert chart["series"]["shared_received"][:3] == [0.08] * 3
    # today's settled total: 6 quarter-hours × 300 Wh, in German number format
    assert "1,80 kWh" in page
    for other in MEMBERS[1:]:
        assert other not in page
    ben = (await clients["ben"].get("/member")).text
    assert "m01" not in ben
    assert "3,60 kWh" in ben  # m02 consumes twice as much


async def test_the_csv_download_is_the_apis_export_of_the_own_member(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    r = await clients["anna"].get("/member/balances.csv", params={"resolution": "day"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "waldstadt-m01-day-" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    today = next(row for row in rows if row["start"].startswith("2026-11-24T23:00"))
    assert today["consumption_kwh"] == "1.8"
    assert today["import_energy_kwh"] == "9.6"  # 48 quarter-hours × 200 Wh
    assert all("m02" not in line for line in r.text.splitlines())
    # another member's id cannot be asked for: the page route takes none
    r = await clients["anna"].get("/member/balances.csv", params={"member_id": "m02"})
    assert "m02" not in r.text
    assert (await clients["olga"].get("/member/balances.csv")).status_code == 403
    bad = await clients["anna"].get(
        "/member/balances.csv", params={"start": "2026-11-30", "end": "2026-11-01"}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "query.end"


async def test_the_auditor_sees_the_log_and_a_broken_chain(
    clients: dict[str, httpx.AsyncClient], web_store: Store
) -> None:
    from sqlalchemy import text

    olga = clients["olga"]
    token = CSRF_RE.search((await olga.get("/operator")).text)
    assert token is not None
    await olga.post(
        "/operator/override",
        data={
            "target": "m01-battery",
            "kind": "battery_power_w",
            "value": "500",
            "expires_min": "10",
            "reason": "probe",
            "csrf": token.group(1),
        },
    )
    page = (await clients["aldo"].get("/audit")).text
    assert "intakt" in page
    assert "command.override" in page
    assert f"<code>{AUDIT.key_id}</code>" in page  # which key the chain was checked with
    async with web_store.engine.begin() as conn:  # an admin switching the triggers off
        await conn.execute(text("DROP TRIGGER audit_log_no_update"))
        await conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 1"))
    page = (await clients["aldo"].get("/audit")).text
    assert "GEBROCHEN" in page


async def test_login_form_targets_cannot_leave_the_site(app: FastAPI) -> None:
    async with client_for(app) as c:
        target = await form_login(c, "anna")
        assert target == "/member"
        r = await c.get("/login", params={"next": "//evil.example/"})
        assert r.headers["location"] == "/member"
