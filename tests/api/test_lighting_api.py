"""Lighting engineers: the configuration (versions, programs, calendars, assignments) changed
through the API — validated, versioned, audited, applied to the running lighting —,
previews of a night and a year, a backtest against an uploaded CSV, savings, failures and the
reason chain of a luminaire's level. Operators read; members and auditors get 403."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.runtime import LightingControl
from kernel.clock import ManualClock
from lighting.config import LightingConfig
from scheduler.health import Readiness
from scheduler.lighting import LightingRuntime as RunningLighting
from scheduler.lighting import LightingServiceConfig
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.site import Site, site_from_data
from store import Store
from store.lighting_config import effective_lighting, lighting_hash
from tests.api.conftest import FAST_HASHER, bearer, settings_for
from tests.scheduler.lighting.harness import running_service

pytestmark = pytest.mark.usefixtures("accounts")
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


# -- configuration, versions, audit -------------------------------------------------------------


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
    assert (await store.audit.verify()).ok


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


# -- preview, backtest, savings, failures -------------------------------------------------------


async def test_preview_of_a_night_stored_and_unsaved_programs(client: httpx.AsyncClient) -> None:
    await seed(client)
    headers = bearer("olga")  # operators may preview
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-11-25"}, headers=headers
    )
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["program"] == "Wohnstraße"
    assert [s["step"] for s in stored["steps"]] == ["on", "evening", "after midnight", "off"]
    assert stored["steps"][1]["local_time"] == "2026-11-25 22:00"
    assert stored["steps"][0]["level_pct"] == 100
    assert stored["svg"].startswith("<svg")
    assert 0 < stored["energy_wh"] < stored["baseline_wh"]
    assert stored["savings_wh"] == stored["baseline_wh"] - stored["energy_wh"]
    levels = [p["level_pct"] for p in stored["curve"]]
    assert max(levels) == 100
    assert levels[-1] == 0

    full: dict[str, Any] = {"name": "trial", "steps": [
        {"name": "dusk", "anchor": "sunset", "level_pct": 100},
        {"name": "dawn", "anchor": "sunrise", "level_pct": 0}]}  # fmt: skip
    r = await client.post(
        f"{LIGHT}/preview/night",
        json={"segment_id": "s1", "night": "2026-11-25", "program": full},
        headers=headers,
    )
    unsaved = r.json()
    assert unsaved["program"] == "trial"
    assert unsaved["rule"] == "preview"
    # full light from sunset to sunrise is the baseline itself
    assert abs(unsaved["energy_wh"] - unsaved["baseline_wh"]) <= 1
    assert unsaved["energy_wh"] > stored["energy_wh"]
    # the Christmas holiday's program, by the calendar
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-12-25"}, headers=headers
    )
    assert (r.json()["program"], r.json()["rule"]) == ("Festbeleuchtung", "Feiertag")

    bad = copy.deepcopy(full)
    bad["steps"][0]["level_pct"] = 101
    errors = fields(
        await client.post(
            f"{LIGHT}/preview/night",
            json={"segment_id": "s1", "night": "2026-11-25", "program": bad},
            headers=headers,
        )
    )
    assert "body.program.steps.0.level_pct" in errors
    errors = fields(
        await client.post(
            f"{LIGHT}/preview/night",
            json={"segment_id": "s9", "night": "2026-11-25"},
            headers=headers,
        )
    )
    assert errors == {"body.segment_id": "unknown segment 's9'"}
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-11-25"},
        headers=bearer("anna"),
    )  # fmt: skip
    assert r.status_code == 403


async def test_preview_of_a_year_by_month(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.post(
        f"{LIGHT}/preview/year", json={"segment_id": "s1", "year": 2026}, headers=bearer("lena")
    )
    assert r.status_code == 200, r.text
    year = r.json()
    months = {m["month"]: m for m in year["months"]}
    assert list(months) == [f"2026-{m:02d}" for m in range(1, 13)]
    assert sum(m["nights"] for m in months.values()) == 365
    assert sum(m["energy_wh"] for m in months.values()) == year["energy_wh"]
    assert sum(m["baseline_wh"] for m in months.values()) == year["baseline_wh"]
    assert months["2026-12"]["energy_wh"] > months["2026-06"]["energy_wh"]  # longer nights
    assert 0 < year["savings_pct"] < 100
    assert year["program"] == "calendar"
    assert year["svg"].startswith("<svg")
    # the same night in the year agrees with the night's preview
    night = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-01-01"},
        headers=bearer("lena"),
    )  # fmt: skip
    jan = await client.post(
        f"{LIGHT}/preview/year",
        json={"segment_id": "s1", "year": 2026, "program_name": "Festbeleuchtung"},
        headers=bearer("lena"),
    )
    assert jan.json()["program"] == "Festbeleuchtung"
    assert jan.json()["energy_wh"] > year["energy_wh"]
    assert night.json()["program"] == "Festbeleuchtung"  # New Year's Day is a holiday in NW
    errors = fields(
        await client.post(
            f"{LIGHT}/preview/year",
            json={"segment_id": "s1", "year": 2026, "program_name": "nope"},
            headers=bearer("lena"),
        )
    )
    assert errors == {"body.program_name": "unknown program 'nope'"}


def traffic_csv(per_window: int, nights: int = 2, segment: str = "s1") -> str:
    """Counts every 10 minutes from 16:00 UTC on 2026-11-23 for ``nights`` nights."""
    start = datetime(2026, 11, 23, 16, tzinfo=UTC)
    rows = ["ts,segment_id,count"]
    t = start
    while t < start + timedelta(days=nights) - timedelta(hours=6):
        rows.append(f"{t.isoformat()},{segment},{per_window}")
        t += timedelta(minutes=10)
    rows.append(f"{start.isoformat()},other,3")
    return "\n".join(rows) + "\n"


async def test_backtest_against_an_uploaded_traffic_csv(client: httpx.AsyncClient) -> None:
    await seed(client)
    lena = bearer("lena")

    async def run(text: str, **form: str) -> httpx.Response:
        return await client.post(
            f"{LIGHT}/backtest",
            files={"file": ("traffic.csv", text.encode(), "text/csv")},
            data={"segment_id": "s1", **form},
            headers=lena,
        )

    quiet = await run(traffic_csv(5))  # 30 veh/h of 600: lowered by two classes
    assert quiet.status_code == 200, quiet.text
    q = quiet.json()
    assert (q["first_night"], q["last_night"]) == ("2026-11-23", "2026-11-24")
    assert [n["night"] for n in q["nights"]] == ["2026-11-23", "2026-11-24"]
    assert q["records"] == len(traffic_csv(5).splitlines()) - 2  # header and the other segment
    assert q["energy_wh"] < q["program_only_wh"] < q["baseline_wh"]
    assert q["adaptation_saved_wh"] == q["program_only_wh"] - q["energy_wh"]
    assert q["lowered_h"] > 5

    busy = (await run(traffic_csv(100))).json()  # 600 veh/h: the design class all night
    assert busy["energy_wh"] == busy["program_only_wh"] == q["program_only_wh"]
    assert busy["lowered_h"] == 0

    one = (await run(traffic_csv(5), first_night="2026-11-24", last_night="2026-11-24")).json()
    assert [n["night"] for n in one["nights"]] == ["2026-11-24"]

    text = traffic_csv(5).splitlines()
    text[2] = text[2].rsplit(",", 1)[0] + ",many"
    errors = fields(await run("\n".join(text)))
    assert errors == {"body.file line 3.count": "not a whole number: 'many'"}
    errors = fields(await run("when,segment_id,count\n2026-11-23T16:00:00+00:00,s1,3\n"))
    assert errors == {"body.file line 1": "missing column(s) ['ts']"}
    text = traffic_csv(5).splitlines()
    text[4] = "2026-11-23 17:00,s1,3"
    errors = fields(await run("\n".join(text)))
    assert errors == {"body.file line 5.ts": "'2026-11-23 17:00' has no UTC offset"}
    errors = fields(await run(traffic_csv(5, segment="s2")))
    assert errors == {"body.file": "no rows for segment 's1'"}
    r = await client.post(
        f"{LIGHT}/backtest",
        files={"file": ("t.csv", b"ts,segment_id,count\n", "text/csv")},
        data={"segment_id": "s1"},
        headers=bearer("aldo"),
    )
    assert r.status_code == 403


async def test_savings_over_a_period_and_failures(client: httpx.AsyncClient, store: Store) -> None:
    await seed(client)
    olga = bearer("olga")
    params = {"first_night": "2026-11-20", "last_night": "2026-11-26"}
    r = await client.get(f"{LIGHT}/savings", params=params, headers=olga)
    assert r.status_code == 200, r.text
    saving = r.json()
    by_seg = {s["segment_id"]: s for s in saving["segments"]}
    assert set(by_seg) == {"s1", "s2"}
    assert by_seg["s1"]["nights"] == 7
    assert saving["energy_wh"] == sum(s["energy_wh"] for s in saving["segments"])
    assert saving["basis"].startswith("model")
    # one night's savings equal that night's preview
    one = await client.get(
        f"{LIGHT}/savings",
        params={"first_night": "2026-11-25", "last_night": "2026-11-25", "segment_id": "s1"},
        headers=olga,
    )
    night = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-11-25"}, headers=olga
    )
    assert one.json()["energy_wh"] == night.json()["energy_wh"]
    assert one.json()["baseline_wh"] == night.json()["baseline_wh"]
    errors = fields(
        await client.get(
            f"{LIGHT}/savings",
            params={"first_night": "2026-01-01", "last_night": "2027-06-01"},
            headers=olga,
        )
    )
    assert "query.last_night" in errors

    now = datetime(2026, 11, 25, 18, tzinfo=UTC)
    await store.alarms.raise_alarm(
        "lighting:l2:lamp_failure:lamp failed",
        source="l2",
        kind="lamp_failure",
        severity="warning",
        message="lamp failed",
        now=now,
    )
    await store.alarms.raise_alarm(
        "device:inv-1:communication_lost",
        source="inv-1",
        kind="communication_lost",
        severity="warning",
        message="no answer",
        now=now,
    )
    r = await client.get(f"{LIGHT}/failures", headers=bearer("lena"))
    assert r.status_code == 200
    body = r.json()
    assert [(f["luminaire_id"], f["segment_id"], f["kind"]) for f in body["active"]] == [
        ("l2", "s1", "lamp_failure")
    ]
    assert body["by_kind"] == {"lamp_failure": 1}
    assert (await client.get(f"{LIGHT}/failures", headers=bearer("anna"))).status_code == 403


async def test_reason_without_a_running_service_says_so(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.get(f"{LIGHT}/luminaires/l1/reason", headers=bearer("lena"))
    assert r.status_code == 404
    assert "no lighting service runs" in r.json()["detail"]
    r = await client.get(f"{LIGHT}/luminaires/l9/reason", headers=bearer("lena"))
    assert r.json()["detail"] == "no luminaire 'l9'"


# -- with the lighting running -------------------------------------------------------------------


@dataclass
class LightingRuntime:
    """A runtime like ``app.service.Service`` for the lighting routes: its clock, its site
    (``site.lighting``) and the real lighting running in its cycle on the broker."""

    clock: ManualClock
    site: Site | None
    lighting: LightingControl | None = None
    metrics: Metrics = field(default_factory=Metrics)

    async def readiness(self) -> Readiness:
        return Readiness(())

    def live(self) -> LiveView:
        return LiveView(None)


@contextlib.asynccontextmanager
async def running_lighting(
    broker: Any, unique: str, clock: ManualClock, config: LightingConfig
) -> AsyncIterator[RunningLighting]:
    assert config.site is not None
    service_config = LightingServiceConfig(prefix=f"{unique}/lights")
    async with running_service(
        broker, f"{unique}-api-lighting", clock, config.site, service_config
    ) as lighting:
        yield lighting


async def test_a_running_service_explains_levels_and_takes_edits(
    store: Store, store_url: str, mqtt_broker: Any, unique: str
) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 22, 30, tzinfo=UTC))  # 23:30 in Iserlohn
    info = {"name": "Iserlohn", "latitude": 51.37, "longitude": 7.70}
    site = site_from_data({"site": info, "lighting": document()})
    site_file = site.lighting
    assert site_file is not None
    runtime = LightingRuntime(clock, site)
    app: FastAPI = create_app(settings_for(store_url), runtime=runtime, store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    transport = httpx.ASGITransport(app=app)
    async with (
        running_lighting(mqtt_broker, unique, clock, site_file) as service,
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        runtime.lighting = service
        lena = bearer("lena")
        config = (await client.get(f"{LIGHT}/config", headers=lena)).json()
        assert (config["source"], config["version"]) == ("site file", None)

        r = await client.get(f"{LIGHT}/luminaires/l2/reason", headers=bearer("olga"))
        assert r.status_code == 200, r.text
        reason = r.json()
        decision = service.decisions["l2"]
        assert reason["reasons"] == list(decision.reasons)
        assert reason["level_pct"] == decision.level_pct
        assert "program 'Wohnstraße' step 'evening' 70 %" in reason["reason_text"]
        seg = (await client.get(f"{LIGHT}/segments/s1", headers=lena)).json()
        assert seg["live"]["step"] == "evening"
        lum = (await client.get(f"{LIGHT}/luminaires/l2", headers=lena)).json()
        assert lum["level_pct"] == decision.level_pct

        r = await client.put(
            f"{LIGHT}/programs/Wohnstraße", json={"steps": steps(35)}, headers=lena
        )
        assert r.status_code == 200, r.text
        assert r.json()["applied"] is True
        assert "the lighting service runs it" in r.json()["detail"]
        assert "step 'evening' 35 %" in service.decisions["l2"].reason_text
        after = (await client.get(f"{LIGHT}/luminaires/l2/reason", headers=lena)).json()
        assert "step 'evening' 35 %" in after["reason_text"]
        assert after["level_pct"] != reason["level_pct"]

        # the stored version is based on the site file, so it applies at the next start
        stored = await store.lighting_config.latest()
        assert stored is not None
        assert stored.base_hash == lighting_hash(site_file)
        chosen = await effective_lighting(store.lighting_config, site_file)
        assert chosen is not None
        assert chosen.version == stored.version
        [update] = await audit_of(store, "lighting.program.update")
        assert update.result == "applied"
        assert date(2026, 11, 25) == clock.now().date()


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
