"""The lighting engineer's page through the ASGI app: a street's luminaires, the editor's
preview of stored and edited programs, the year, and saving through the lighting API."""

from __future__ import annotations

import httpx

from store import Store
from tests.web.conftest import CSRF_RE


async def test_the_lighting_page_and_its_preview_follow_an_edited_program(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    lena = clients["lena"]
    page = await lena.get("/lighting")
    assert page.status_code == 200
    assert "waldweg-01" in page.text
    assert "Wohnstraße" in page.text
    # no lighting runs beside these pages: it says so instead of "0/4 reporting"
    assert 'id="lighting-not-running"' in page.text
    assert 'id="reporting"' not in page.text
    csrf = CSRF_RE.search(page.text)
    assert csrf is not None
    headers = {"X-CSRF-Token": csrf.group(1)}
    stored = await lena.post(
        "/lighting/preview", json={"segment": "waldweg", "night": "2026-12-24"}, headers=headers
    )
    assert stored.status_code == 200, stored.text
    steps = [
        {"name": "dusk", "anchor": "sunset", "level_pct": 100, "ramp_s": 60},
        {"name": "dawn", "anchor": "sunrise", "offset_min": 10, "level_pct": 0, "ramp_s": 60},
    ]
    edited = await lena.post(
        "/lighting/preview",
        json={
            "segment": "waldweg",
            "night": "2026-12-24",
            "program": {"name": "Wohnstraße", "steps": steps},
        },
        headers=headers,
    )
    assert edited.status_code == 200
    a, b = stored.json(), edited.json()
    assert b["energy_wh"] > a["energy_wh"]  # full light all night costs more
    assert max(p[1] for p in b["points"]) == 100
    bad = await lena.post(
        "/lighting/preview",
        json={
            "segment": "waldweg",
            "night": "2026-12-24",
            "program": {"name": "x", "steps": [{**steps[0], "level_pct": 140}]},
        },
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"].startswith("body.program.steps.0")
    year = await lena.get("/lighting/year.json", params={"segment": "waldweg", "year": 2026})
    y = year.json()
    assert len(y["months"]) == 12
    assert 0 < y["energy_kwh"] < y["baseline_kwh"]
    assert y["savings_pct"] > 0
    assert (
        await clients["anna"].get(
            "/lighting/year.json", params={"segment": "waldweg", "year": 2026}
        )
    ).status_code == 403


async def test_the_editor_saves_a_program_through_the_lighting_api(
    clients: dict[str, httpx.AsyncClient], web_store: Store
) -> None:
    lena = clients["lena"]
    page = await lena.get("/lighting")
    csrf = CSRF_RE.search(page.text)
    assert csrf is not None
    headers = {"X-CSRF-Token": csrf.group(1)}
    night = {"segment": "waldweg", "night": "2026-12-24"}
    before = (await lena.post("/lighting/preview", json=night, headers=headers)).json()
    steps = [
        {"name": "dusk", "anchor": "sunset", "level_pct": 100, "ramp_s": 60},
        {"name": "dawn", "anchor": "sunrise", "offset_min": 10, "level_pct": 0, "ramp_s": 60},
    ]
    url = "/lighting/programs/Wohnstraße"
    assert (await lena.post(url, json={"steps": steps})).status_code == 403
    bad = await lena.post(url, json={"steps": [{**steps[0], "level_pct": 140}]}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"].startswith("body.steps.0")
    saved = await lena.post(url, json={"steps": steps}, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] >= 1
    after = (await lena.post("/lighting/preview", json=night, headers=headers)).json()
    assert after["energy_wh"] > before["energy_wh"]
    records = await web_store.audit.records(0, 100)
    assert records[-1].entry.action == "lighting.program.update"
    assert records[-1].entry.actor == "lena"
    refused = await clients["olga"].post(url, json={"steps": steps}, headers=headers)
    assert refused.status_code == 403
