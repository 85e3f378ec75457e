"""Figures on the lighting configuration: previews of a night and a year (stored and unsaved
programs), a backtest against an uploaded traffic CSV, savings over a period and the active
failures. Operators may ask too; members and auditors get 403."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from store import Store
from tests.api.conftest import bearer
from tests.api.lighting_helpers import LIGHT, fields, seed

pytestmark = pytest.mark.usefixtures("accounts")


async def test_preview_of_a_night_with_the_stored_program(client: httpx.AsyncClient) -> None:
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

    # the Christmas holiday's program, by the calendar
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-12-25"}, headers=headers
    )
    assert (r.json()["program"], r.json()["rule"]) == ("Festbeleuchtung", "Feiertag")


async def test_preview_of_a_night_with_an_unsaved_program(client: httpx.AsyncClient) -> None:
    await seed(client)
    headers = bearer("olga")  # operators may preview
    r = await client.post(
        f"{LIGHT}/preview/night", json={"segment_id": "s1", "night": "2026-11-25"}, headers=headers
    )
    stored = r.json()
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
