"""check_site against real Modbus simulators on loopback: the production drivers, one read each."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from protocols.clock import RealClock
from scheduler.site import Site, site_from_data
from scheduler.site_check import check_site
from sims.modbus.fleet import ModbusFleet


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
async def fleet() -> AsyncIterator[ModbusFleet]:
    fleet = ModbusFleet(RealClock())
    # gw-a: an SDM630 meter and a SunSpec inverter; gw-b: a SunSpec 203 meter and an inverter
    fleet.add_household("h1", gateway="gw-a", kwp=8.0, battery_wh=None, meter="sdm630")
    fleet.add_household("h2", gateway="gw-b", kwp=None, battery_wh=None, meter="sunspec")
    fleet.add_inverter("school-pv", gateway="gw-b", rated_w=30_000)
    async with fleet:
        yield fleet


def site_for(fleet: ModbusFleet, extra_devices: list[dict[str, Any]] | None = None) -> Site:
    drivers = {"eastron_sdm630": "eastron_sdm630"}
    devices = [
        {
            "name": ep.name,
            "driver": drivers.get(ep.kind, "sunspec"),
            "host": ep.host,
            "port": ep.port,
            "unit_id": ep.unit_id,
        }
        for ep in fleet.endpoints.values()
    ]
    data = {
        "site": {"name": "Prüfstand", "latitude": 51.37, "longitude": 7.70},
        "devices": devices + (extra_devices or []),
        "members": [
            {
                "id": "h1",
                "name": "H1",
                "meter": "h1-meter",
                "pv": [{"device": "h1-pv", "rated_power_w": 8000}],
            },
            {"id": "h2", "name": "H2", "meter": "h2-meter"},
            {"id": "school", "name": "Schule", "meter": "school-pv"},
        ],
    }
    return site_from_data(data, "test")


async def test_reachable_devices_are_ok_and_an_inverter_posing_as_meter_is_not(
    fleet: ModbusFleet,
) -> None:
    site = site_for(fleet)
    report = await check_site(site, RealClock(), timeout_s=2.0)
    by_name = {d.name: d for d in report.devices}
    assert [d.name for d in report.devices] == [d.name for d in site.devices]
    assert by_name["h1-meter"].ok, by_name["h1-meter"]
    assert by_name["h1-meter"].detail.startswith("template eastron_sdm630; ")
    assert "power_w" in by_name["h1-meter"].detail
    assert by_name["h1-pv"].ok
    assert by_name["h1-pv"].detail.startswith("SunSpec inverter")
    assert by_name["h2-meter"].ok
    assert by_name["h2-meter"].detail.startswith("SunSpec meter")
    # school-pv answers, but the site names it as the school's grid-point meter
    school = by_name["school-pv"]
    assert school.status == "error"
    assert "members.2.meter names it as a grid-point meter" in school.detail
    assert not report.all_ok
    assert [d.name for d in report.failed] == ["school-pv"]
    assert report.summary.devices == 4
    assert report.summary.members == 3


async def test_a_closed_port_is_unreachable_with_its_reason_and_others_unaffected(
    fleet: ModbusFleet,
) -> None:
    port = closed_port()
    site = site_for(
        fleet,
        [
            {"name": "gone-1", "driver": "eastron_sdm630", "host": "127.0.0.1", "port": port},
            {
                "name": "gone-2",
                "driver": "sunspec",
                "host": "127.0.0.1",
                "port": port,
                "unit_id": 2,
            },
        ],
    )
    clock = RealClock()
    started = clock.monotonic()
    report = await check_site(site, clock, timeout_s=1.5)
    elapsed = clock.monotonic() - started
    by_name = {d.name: d for d in report.devices}
    gone = by_name["gone-1"]
    assert gone.status == "unreachable"
    assert f"127.0.0.1:{port}" in gone.detail
    assert "refused" in gone.detail or "connect failed" in gone.detail
    assert gone.elapsed_s <= 1.5
    # the second device behind the dead gateway is told at once, not after another timeout
    assert by_name["gone-2"].status == "unreachable"
    assert f"gateway 127.0.0.1:{port} down" in by_name["gone-2"].detail
    assert [by_name[n].status for n in ("h1-meter", "h1-pv", "h2-meter")] == ["ok"] * 3
    assert elapsed < 3.0


async def test_a_silent_unit_times_out_within_its_budget_and_its_neighbour_still_answers(
    fleet: ModbusFleet,
) -> None:
    fleet.silence("h2-meter")
    site = site_for(fleet)
    clock = RealClock()
    started = clock.monotonic()
    report = await check_site(site, clock, timeout_s=0.5)
    elapsed = clock.monotonic() - started
    by_name = {d.name: d for d in report.devices}
    silent = by_name["h2-meter"]
    assert silent.status == "unreachable"
    assert "within 0.5 s" in silent.detail
    assert silent.elapsed_s < 0.5 + 0.3
    # school-pv is behind the same gateway, checked after the silent unit: still answers
    assert by_name["school-pv"].status == "error"  # answers; only its role is wrong
    assert by_name["h1-meter"].ok
    assert elapsed < 2.5
