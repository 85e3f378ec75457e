"""The demo: the readout as text, the community sums, and a short run of a small town through
the real service (broker, Modbus sims, SQLite, web app)."""

from __future__ import annotations

import io
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.demo import (
    CommunityNow,
    DemoStatus,
    PlanNow,
    SettlementNow,
    StreetNow,
    community_now,
    render,
    run_demo,
)
from kernel.readings import Reading
from protocols.mqtt.embedded import free_port
from scheduler.site import site_from_data
from scheduler.snapshot import Snapshot
from tests.conftest import BrokerAddress

NOON = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)

SMALL_TOWN = """\
name: Testdorf
start: 2026-06-21T10:12:00Z
speed: 150
households:
  - {prefix: h1, gateway: gw-a, annual_kwh: 3000, kwp: 8, battery_wh: 10000}
  - {prefix: h2, gateway: gw-a, annual_kwh: 4000, kwp: null, meter: sunspec}
plants:
  - {name: plant, gateway: gw-b, kwp: 60, meter: sunspec}
streets:
  - {name: ring, luminaires: 3, rated_power_w: 50, sensor_dev_eui: "70b3d57ed00000aa"}
"""


def test_render_shows_the_community_plan_settlement_and_streets() -> None:
    status = DemoStatus(
        town="Testdorf",
        timezone="Europe/Berlin",
        now=NOON,
        speed=144,
        communities=(CommunityNow("q", "Quartier", 3, 12_000, 5_000, 2_000, -7_000),),
        plans={"q": PlanNow("optimal", -3.5, 1, 4)},
        settlement={
            "q": SettlementNow(
                3,
                "provisional through 11:45",
                Decimal("41.2"),
                Decimal("9.5"),
                Decimal("20.25"),
                Decimal("7.10"),
            )
        },
        streets=(StreetNow("ring", 3, 2, 0.0, 1.0, "day"),),
        devices_unavailable=1,
        devices=7,
    )
    text = render(status)
    assert "2026-06-21 12:00 Europe/Berlin (simulated, 144× real time)" in text
    assert "devices answering 6/7" in text
    assert "generation 12.0 kW, consumption 5.0 kW, shared 2.0 kW, grid -7.0 kW" in text
    assert "plan: optimal, -3.50 €" in text
    assert "4 setpoints in force, 1 PV curtailed" in text
    assert "(provisional through 11:45 v3): consumption 41.2 kWh, shared 9.5 kWh" in text
    assert "members owe 7.10 €" in text
    street = next(line for line in text.splitlines() if line.startswith("street ring"))
    assert "2/3" in street
    assert "(day)" in street


def test_render_before_the_first_cycle_says_so_and_shows_no_zeros() -> None:
    status = DemoStatus(
        town="Testdorf",
        timezone="Europe/Berlin",
        now=NOON,
        speed=60,
        streets=(StreetNow("ring", 3, 0, None, None),),
    )
    text = render(status)
    assert "community: no cycle yet" in text
    street = next(line for line in text.splitlines() if line.startswith("street ring"))
    assert "—" in street
    assert " 0 " not in street


def test_render_marks_a_slowed_clock_a_stale_plan_a_late_settlement_and_dark_lamps() -> None:
    """Nothing stale is shown as current: the clock says it slowed and why, a plan made for
    10:45 at 12:00 is stale, a settlement through 11:15 is behind, and a street whose lamps
    are dark while 100 % was commanded says so."""
    status = DemoStatus(
        town="Testdorf",
        timezone="Europe/Berlin",
        now=NOON,
        speed=40,
        target_speed=144,
        slowed="the machine is busy (cycles took 180 % of their time)",
        communities=(CommunityNow("q", "Quartier", 3, 0, 5_000, 0, 5_000),),
        plans={"q": PlanNow("optimal", 1.0, 0, 4, NOON - timedelta(hours=1, minutes=15))},
        settlement={
            "q": SettlementNow(
                3,
                "provisional",
                Decimal(1),
                Decimal(0),
                Decimal(1),
                Decimal("-21.57"),
                through=NOON - timedelta(minutes=45),
            )
        },
        streets=(StreetNow("ring", 25, 25, 0.0, 12.5, "dusk 100 %", following=0, differing=25),),
    )
    text = render(status)
    assert "(simulated, slowed to 40× of 144× — the machine is busy (cycles took 180 %" in text
    assert "STALE: made for 10:45, 1 h 15 min old" in text
    assert "BEHIND by 45 min" in text
    assert "members receive 21.57 €" in text
    assert "NOT FOLLOWING: 25 of 25 lamps off their command" in text


def test_a_current_plan_and_settlement_carry_no_marker() -> None:
    status = DemoStatus(
        town="Testdorf",
        timezone="Europe/Berlin",
        now=NOON + timedelta(minutes=7),
        speed=144,
        communities=(CommunityNow("q", "Quartier", 3, 0, 5_000, 0, 5_000),),
        plans={"q": PlanNow("optimal", 1.0, 0, 4, NOON)},
        settlement={
            "q": SettlementNow(
                3, "provisional", Decimal(1), Decimal(0), Decimal(1), Decimal(1), through=NOON
            )
        },
    )
    text = render(status)
    assert "STALE" not in text
    assert "BEHIND" not in text
    assert "slowed" not in text


def _site() -> object:
    def dev(name: str, driver: str, unit: int) -> dict[str, object]:
        return {"name": name, "driver": driver, "host": "127.0.0.1", "unit_id": unit}

    return site_from_data(
        {
            "site": {"name": "T", "latitude": 51.37, "longitude": 7.70},
            "devices": [
                dev("a-meter", "eastron_sdm630", 1),
                dev("a-pv", "sunspec", 2),
                dev("a-bat", "battery_inverter", 3),
                dev("b-meter", "eastron_sdm630", 4),
                dev("c-meter", "eastron_sdm630", 5),
            ],
            "tariffs": [
                {
                    "name": "t",
                    "valid_from": "2026-01-01T00:00:00+01:00",
                    "supplier_price_eur_per_kwh": "0.3",
                    "community_price_eur_per_kwh": "0.2",
                    "feed_in_price_eur_per_kwh": "0.08",
                }
            ],
            "members": [
                {
                    "id": "a",
                    "name": "A",
                    "meter": "a-meter",
                    "pv": [{"device": "a-pv", "rated_power_w": 8000}],
                    "battery": {
                        "device": "a-bat",
                        "capacity_wh": 10000,
                        "max_charge_w": 5000,
                        "max_discharge_w": 5000,
                    },
                },
                {"id": "b", "name": "B", "meter": "b-meter"},
                {"id": "c", "name": "C", "meter": "c-meter"},
            ],
            "communities": [
                {
                    "id": "q",
                    "name": "Quartier",
                    "keys": [{"kind": "dynamic"}],
                    "tariffs": ["t"],
                    "members": [{"member": "a"}, {"member": "b"}, {"member": "c"}],
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("a_meter", "a_pv", "a_bat", "b_meter", "expected"),
    [
        # A: PV 6 kW, battery charging 1 kW, exports 3 kW → uses 2 kW; B imports 2 kW:
        # 2 kW shared, the community draws -1 kW (exports 1 kW)
        (-3000, 6000, 1000, 2000, (6000, 4000, 2000, -1000)),
        # nobody exports: nothing is shared
        (500, 0, 0, 2000, (0, 2500, 0, 2500)),
    ],
)
def test_community_now_sums_meters_pv_and_batteries(
    a_meter: float, a_pv: float, a_bat: float, b_meter: float, expected: tuple[float, ...]
) -> None:
    site = _site()
    snap = Snapshot.build(
        NOON,
        [
            Reading("a-meter", "power_w", a_meter, "W", NOON),
            Reading("a-pv", "power_w", a_pv, "W", NOON),
            Reading("a-bat", "battery_power_w", a_bat, "W", NOON),
            Reading("b-meter", "power_w", b_meter, "W", NOON),
        ],
        unavailable={"c-meter"},
    )
    now = community_now(site, "q", snap)  # type: ignore[arg-type]
    assert (now.generation_w, now.consumption_w, now.shared_w, now.grid_w) == expected
    assert now.unread == 1  # C's meter did not answer: left out, not counted as zero
    assert now.members == 3


async def test_the_demo_runs_a_small_town_through_the_service_and_serves_the_web_app(
    tmp_path: Path, mqtt_broker: BrokerAddress
) -> None:
    town = tmp_path / "town.yaml"
    town.write_text(SMALL_TOWN)
    out = io.StringIO()
    port = free_port()
    db = tmp_path / "demo.sqlite"
    fetched: dict[str, object] = {}

    import asyncio

    async def probe() -> None:
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                body = await asyncio.to_thread(
                    lambda: (
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                        .read()
                        .decode()
                    )
                )
            except OSError:
                continue
            fetched["health"] = json.loads(body)
            return

    task = asyncio.create_task(probe())
    status = await run_demo(
        town=town,
        duration_s=8.0,
        broker_url=f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}",
        port=port,
        database_url=f"sqlite+aiosqlite:///{db}",
        refresh_s=1.0,
        out=out,
    )
    await task
    text = out.getvalue()
    assert "Waldstadt demo: broker mqtt://" in text
    assert f"database: sqlite+aiosqlite:///{db}" in text
    assert "logins: operator / waldstadt-operator (operator)" in text
    assert status is not None
    assert status.devices_unavailable == 0
    [community] = status.communities
    assert community.generation_w > 1_000  # noon in June: the PV produces (clouds vary)
    assert community.unread == 0
    assert next(iter(status.plans.values())).status in {"optimal", "feasible"}
    # past 10:30:30: the quarter-hour 10:15-10:30 was metered and settled provisionally
    assert status.settlement, text[-2000:]
    [street] = status.streets
    assert street.reporting == 3
    assert street.level_pct == 0  # noon: lights off
    assert "status" in fetched.get("health", {}), fetched
