"""Lighting engineers change the configuration (versions, programs, calendars, assignments)
through the API — validated (over a year for programs), versioned, audited, idempotent with a
key; operators read; members and auditors get 403."""

from __future__ import annotations

import httpx
import pytest

from lighting.config import LightingConfig
from store import Store
from tests.api.conftest import AUDIT, bearer
from tests.api.lighting_helpers import LIGHT, audit_of, document, fields, seed, steps

pytestmark = pytest.mark.usefixtures("accounts")


async def test_without_a_configuration_every_reader_is_told_why(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/config", "/segments", "/programs", "/luminaires/l1/reason"):
        r = await client.get(LIGHT + path, headers=bearer("lena"))
        assert r.status_code == 404, (path, r.text)
        assert "no lighting configuration" in r.json()["detail"]
    r = await client.get(f"{LIGHT}/failures", headers=bearer("olga"))
    assert r.json() == {"active": [], "by_kind": {}}


async def test_engineers_edit_operators_read_members_and_auditors_may_not(
    client: httpx.AsyncClient, store: Store
) -> None:
    first = await seed(client)
    assert first["version"] == 1
    assert first["applied"] is False
    assert "applies when the service starts" in first["detail"]
    r = await client.get(f"{LIGHT}/config", headers=bearer("olga"))
    assert r.status_code == 200
    assert r.json()["source"] == "stored version 1"
    assert r.json()["document"] == LightingConfig.model_validate(document()).model_dump(mode="json")
    for user in ("anna", "aldo"):
        assert (await client.get(f"{LIGHT}/segments", headers=bearer(user))).status_code == 403
    put = {"steps": steps(50)}
    r = await client.put(f"{LIGHT}/programs/Wohnstraße", json=put, headers=bearer("olga"))
    assert r.status_code == 403
    assert (await store.lighting_config.latest_version()) == 1

    segs = (await client.get(f"{LIGHT}/segments", headers=bearer("olga"))).json()
    assert [(s["id"], s["luminaires"], s["live"]) for s in segs] == [
        ("s1", ["l1", "l2", "l3"], None),
        ("s2", ["w1"], None),
    ]
    lums = (
        await client.get(f"{LIGHT}/luminaires", params={"segment_id": "s2"}, headers=bearer("lena"))
    ).json()
    assert [(lum["id"], lum["rated_power_w"], lum["level_pct"]) for lum in lums] == [
        ("w1", 20.0, None)
    ]
    program = (await client.get(f"{LIGHT}/programs/Festbeleuchtung", headers=bearer("lena"))).json()
    assert program["calendars"] == ["default"]
    calendar = (await client.get(f"{LIGHT}/calendars/default", headers=bearer("lena"))).json()
    assert calendar["segments"] == ["s1", "s2"]
    assert (await client.get(f"{LIGHT}/programs/nope", headers=bearer("lena"))).status_code == 404
    assert (await client.get(f"{LIGHT}/segments/nope", headers=bearer("lena"))).status_code == 404
    [replaced] = await audit_of(store, "lighting.config.replace")
    assert (replaced.actor, replaced.role, replaced.result) == (
        "lena",
        "lighting_engineer",
        "stored",
    )
    assert replaced.old_value is None
    assert replaced.new_value["change"] == "initial import"


async def test_program_edits_are_validated_versioned_and_audited(
    client: httpx.AsyncClient, store: Store
) -> None:
    await seed(client)
    lena = bearer("lena")
    bad = steps()
    bad[1]["level_pct"] = 150
    errors = fields(
        await client.put(f"{LIGHT}/programs/Wohnstraße", json={"steps": bad}, headers=lena)
    )
    assert "body.steps.1.level_pct" in errors
    assert "less than or equal to 100" in errors["body.steps.1.level_pct"]

    unquoted = steps()
    unquoted[1]["clock"] = 1320  # what YAML makes of an unquoted 22:00
    errors = fields(
        await client.put(f"{LIGHT}/programs/Wohnstraße", json={"steps": unquoted}, headers=lena)
    )
    assert "quoted" in errors["body.steps.1.clock"]

    disordered = steps()
    disordered[1]["clock"] = "15:00"  # before sunset in November
    errors = fields(
        await client.put(f"{LIGHT}/programs/Wohnstraße", json={"steps": disordered}, headers=lena)
    )
    assert "body.steps" in errors
    assert "Wohnstraße" in errors["body.steps"]

    taken = {"name": "Wohnstraße", "steps": steps()}
    assert (await client.post(f"{LIGHT}/programs", json=taken, headers=lena)).status_code == 409
    assert (
        await client.put(f"{LIGHT}/programs/nope", json={"steps": steps()}, headers=lena)
    ).status_code == 404
    assert (await store.lighting_config.latest_version()) == 1  # nothing stored so far

    r = await client.post(
        f"{LIGHT}/programs", json={"name": "Spät", "steps": steps(40)}, headers=lena
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    r = await client.put(f"{LIGHT}/programs/Wohnstraße", json={"steps": steps(55)}, headers=lena)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    got = (await client.get(f"{LIGHT}/programs/Wohnstraße", headers=lena)).json()
    assert got["steps"][1]["level_pct"] == 55
    versions = (await client.get(f"{LIGHT}/config/versions", headers=bearer("olga"))).json()
    assert [(v["version"], v["created_by"]) for v in versions] == [
        (3, "lena"),
        (2, "lena"),
        (1, "lena"),
    ]
    assert versions[0]["change"] == "program 'Wohnstraße' changed"
    [update] = await audit_of(store, "lighting.program.update")
    assert update.target == "program:Wohnstraße"
    assert update.old_value["steps"][1]["level_pct"] == 70
    assert update.new_value["steps"][1]["level_pct"] == 55
    [create] = await audit_of(store, "lighting.program.create")
    assert (create.old_value, create.new_value["name"]) == (None, "Spät")
    assert (await store.audit.verify(AUDIT)).ok


async def test_calendars_and_assignments(client: httpx.AsyncClient, store: Store) -> None:
    await seed(client)
    lena = bearer("lena")
    unknown = {"name": "x", "default_program": "Nachtbus", "rules": []}
    errors = fields(await client.post(f"{LIGHT}/calendars", json=unknown, headers=lena))
    assert any("unknown program 'Nachtbus'" in reason for reason in errors.values()), errors
    assert any(f.startswith("config") for f in errors), errors
    bad_rule = {"name": "x", "default_program": "Wohnstraße",
                "rules": [{"kind": "weekday", "name": "w", "program": "Wohnstraße",
                           "weekdays": ["someday"]}]}  # fmt: skip
    errors = fields(await client.post(f"{LIGHT}/calendars", json=bad_rule, headers=lena))
    assert any("someday" in reason for reason in errors.values()), errors

    weekend = {"name": "wochenende", "default_program": "Wohnstraße", "state": "NW",
               "rules": [{"kind": "weekday", "name": "Wochenende", "program": "Festbeleuchtung",
                          "weekdays": ["sat", "sun"]}]}  # fmt: skip
    r = await client.post(f"{LIGHT}/calendars", json=weekend, headers=lena)
    assert r.status_code == 201, r.text

    errors = fields(
        await client.put(f"{LIGHT}/segments/s2/assignment", json={"calendar": "nope"}, headers=lena)
    )
    assert errors == {"body.calendar": "unknown calendar 'nope'"}
    errors = fields(
        await client.put(
            f"{LIGHT}/segments/s2/assignment",
            json={"calendar": "default", "program": "Wohnstraße"},
            headers=lena,
        )
    )
    assert "exactly one" in next(iter(errors.values()))
    r = await client.put(
        f"{LIGHT}/segments/s2/assignment", json={"calendar": "wochenende"}, headers=lena
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        f"{LIGHT}/segments/s1/assignment", json={"program": "Festbeleuchtung"}, headers=lena
    )
    assert r.status_code == 200, r.text
    segs = {
        s["id"]: s["calendar"] for s in (await client.get(f"{LIGHT}/segments", headers=lena)).json()
    }
    assert segs == {"s1": "only Festbeleuchtung", "s2": "wochenende"}
    only = (await client.get(f"{LIGHT}/calendars/only Festbeleuchtung", headers=lena)).json()
    assert (only["default_program"], only["rules"], only["state"]) == ("Festbeleuchtung", [], "NW")
    assigned = await audit_of(store, "lighting.segment.assign")
    assert [(a.target, a.old_value, a.new_value) for a in assigned] == [
        ("segment:s2", {"calendar": "default"}, {"calendar": "wochenende"}),
        (
            "segment:s1",
            {"calendar": "default"},
            {"calendar": "only Festbeleuchtung", "program": "Festbeleuchtung"},
        ),
    ]
    # a night of s1 now runs the assigned program
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-11-25"}, headers=lena
    )
    assert r.json()["program"] == "Festbeleuchtung"


async def test_a_stale_edit_is_a_conflict_and_a_repeat_with_the_key_is_not_a_second_edit(
    client: httpx.AsyncClient, store: Store
) -> None:
    await seed(client)
    headers = {**bearer("lena"), "Idempotency-Key": "edit-1"}
    body = {"steps": steps(45)}
    first = await client.put(f"{LIGHT}/programs/Wohnstraße", json=body, headers=headers)
    again = await client.put(f"{LIGHT}/programs/Wohnstraße", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert await store.lighting_config.latest_version() == 2
    assert len(await audit_of(store, "lighting.program.update")) == 1


async def test_programs_that_cannot_be_resolved_are_refused_not_crashed_on(
    client: httpx.AsyncClient, store: Store
) -> None:
    await seed(client)
    lena = bearer("lena")
    absurd = steps()
    absurd[2]["offset_min"] = 1e300  # beyond any calendar
    r = await client.put(f"{LIGHT}/programs/Wohnstraße", json={"steps": absurd}, headers=lena)
    assert "body.steps" in fields(r)
    r = await client.post(
        f"{LIGHT}/preview/night",
        json={"segment_id": "s1", "night": "2026-11-25", "program": {"name": "x", "steps": absurd}},
        headers=lena,
    )
    assert "body.program" in fields(r)
    # a whole document whose program breaks in summer: 21:00 comes before the June sunset
    doc = document()
    doc["programs"][0]["steps"][1]["clock"] = "21:00"
    r = await client.put(f"{LIGHT}/config", json={"document": doc}, headers=lena)
    reason = fields(r)["body.document.programs.0"]
    assert "Wohnstraße" in reason
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "0001-01-01"}, headers=lena
    )
    assert "body.night" in fields(r)
    assert await store.lighting_config.latest_version() == 1
