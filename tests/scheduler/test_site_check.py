"""check_site against real Modbus simulators on loopback: the production drivers, one read each."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from app.commands.site import register
from kernel.clock import RealClock
from scheduler.site import Site, site_from_data
from scheduler.site_check import check_site
from sims.modbus.fleet import ModbusFleet

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"


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
    assert by_name["gone-2"].detail == f"gateway 127.0.0.1:{port} not reachable (see gone-1)"
    assert by_name["gone-2"].elapsed_s == 0.0
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


# -- the command: waldstadt check-site --------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test root"""

    register(app)
    return app


def test_check_site_without_connecting_prints_the_summary() -> None:
    result = CliRunner().invoke(cli(), ["check-site", str(EXAMPLE), "--no-connect"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "site.yaml: OK — 5 members, 1 community, 12 devices, 6 luminaires, 2 programs"
    )


def test_check_site_prints_the_one_error_with_file_and_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "pv: [{device: hh02-pv,", "pv: [{device: hh02-pvv,"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if "hh02-pvv" in ln)
    result = CliRunner().invoke(cli(), ["check-site", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"{bad}:{line}: members.1.pv.0.device: unknown device 'hh02-pvv'"
    )


def test_check_site_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["check-site", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path / 'nope.yaml'}: <file>: cannot read")


def write_site(tmp_path: Path, fleet: ModbusFleet, extra: list[dict[str, Any]]) -> Path:
    site = site_for(fleet, extra)
    data = site.model_dump(mode="json", exclude_defaults=True)
    data["members"] = data["members"][:2]  # without the inverter posing as a meter
    data["devices"] = [d for d in data["devices"] if d["name"] != "school-pv"]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def test_check_site_lists_every_device_and_exits_2_when_one_is_unreachable(
    fleet: ModbusFleet, tmp_path: Path
) -> None:
    port = closed_port()
    path = write_site(
        tmp_path,
        fleet,
        [{"name": "gone", "driver": "eastron_sdm630", "host": "127.0.0.1", "port": port}],
    )
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, cli(), ["check-site", str(path), "--timeout", "1"]
    )
    assert result.exit_code == 2, result.output
    lines = result.stdout.splitlines()
    assert (
        lines[0] == "site.yaml: OK — 2 members, 0 communities, 4 devices, 0 luminaires, 0 programs"
    )
    assert lines[1].split() == ["device", "driver", "address", "status", "time", "detail"]
    # columns are separated by two spaces at least; the address has single spaces inside
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", ln) for ln in lines[2:])}
    assert set(rows) == {"h1-pv", "h1-meter", "h2-meter", "gone"}
    for name in ("h1-pv", "h1-meter", "h2-meter"):
        assert rows[name][3] == "ok", rows[name]
    assert rows["h1-meter"][1:3] == [
        "eastron_sdm630",
        f"{fleet.endpoint('h1-meter').host}:{fleet.endpoint('h1-meter').port} unit 2",
    ]
    assert rows["gone"][2:4] == [f"127.0.0.1:{port} unit 1", "unreachable"]
    assert rows["gone"][5].startswith(f"gateway 127.0.0.1:{port}: connection refused")
    assert result.stderr.strip() == "1 of 4 devices not OK: gone"

    healthy = write_site(tmp_path, fleet, [])
    result = await asyncio.to_thread(runner.invoke, cli(), ["check-site", str(healthy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "all 3 devices answered"
