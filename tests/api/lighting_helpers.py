"""What the lighting API tests share: a lighting document of two segments, seeding it
through the API, and reading a 422's fields and the audit records of an action."""

from __future__ import annotations

from typing import Any

import httpx

from store import Store
from tests.api.conftest import bearer

LIGHT = "/api/v1/lighting"


def steps(evening_pct: float = 70.0) -> list[dict[str, Any]]:
    return [
        {"name": "on", "anchor": "sunset", "offset_min": -10, "level_pct": 100, "ramp_s": 60},
        {"name": "evening", "anchor": "clock", "clock": "22:00", "level_pct": evening_pct,
         "ramp_s": 300},
        {"name": "after midnight", "anchor": "solar_midnight", "level_pct": 30, "ramp_s": 300},
        {"name": "off", "anchor": "sunrise", "offset_min": 10, "level_pct": 0, "ramp_s": 60},
    ]  # fmt: skip


def document() -> dict[str, Any]:
    """One street of three luminaires (segment s1, M4 with M5/M6 below) and a second segment."""
    return {
        "programs": [
            {"name": "Wohnstraße", "steps": steps()},
            {"name": "Festbeleuchtung", "steps": [
                {"name": "dusk", "anchor": "sunset", "level_pct": 100, "ramp_s": 60},
                {"name": "dawn", "anchor": "sunrise", "level_pct": 0, "ramp_s": 60}]},
        ],
        "calendars": [
            {"name": "default", "default_program": "Wohnstraße", "state": "NW",
             "rules": [{"kind": "holiday", "name": "Feiertag", "program": "Festbeleuchtung"}]},
        ],
        "segments": [
            {"id": "s1", "latitude_deg": 51.37, "longitude_deg": 7.70, "design_class": "M4",
             "lower_classes": ["M5", "M6"], "driver_min_pct": 10,
             "traffic": {"capacity_veh_per_h": 600}},
            {"id": "s2", "latitude_deg": 51.37, "longitude_deg": 7.70, "design_class": "P3",
             "lower_classes": ["P4"]},
        ],
        "luminaires": [
            *({"id": f"l{i}", "segment": "s1", "street": "Hauptstraße", "pole": i,
               "rated_power_w": 40} for i in range(1, 4)),
            {"id": "w1", "segment": "s2", "street": "Waldweg", "pole": 1, "rated_power_w": 20},
        ],
    }  # fmt: skip


async def seed(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.put(
        f"{LIGHT}/config",
        json={"document": document(), "change": "initial import"},
        headers=bearer("lena"),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def fields(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {e["field"]: e["reason"] for e in r.json()["detail"]}


async def audit_of(store: Store, action: str) -> list[Any]:
    return [r.entry for r in await store.audit.records() if r.entry.action == action]
