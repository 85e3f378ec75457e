"""The simulated town from YAML, read through the production drivers, and the demo readout."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lighting.program import check_program
from protocols.errors import ConfigError
from sims.demo import Readout, demo_lighting, render, run_demo
from sims.town import DEFAULT_TOWN, load_town

SMALL_TOWN = """\
name: Testdorf
start: 2026-06-21T10:00:00Z
speed: 60
households:
  - {prefix: h1, gateway: gw-a, annual_kwh: 3000, kwp: 8, battery_wh: 10000}
  - {prefix: h2, gateway: gw-a, annual_kwh: 4000, kwp: null, meter: sunspec}
plants:
  - {name: plant, gateway: gw-b, kwp: 60}
streets:
  - {name: ring, luminaires: 3, rated_power_w: 50, sensor_dev_eui: "70b3d57ed00000aa"}
"""


def test_the_default_town_loads() -> None:
    town = load_town(DEFAULT_TOWN)
    assert len(town.households) >= 6
    assert all(s.sensor_dev_eui for s in town.streets)
    site = demo_lighting(town)
    assert len(site.index.luminaires) == sum(s.luminaires for s in town.streets)
    assert set(site.index.segments) == {s.name for s in town.streets}
    # an anchor order that holds in winter can break in June: check every night of a year
    for segment in site.index.segments.values():
        for program in site.programs.programs.values():
            check_program(program, segment.place, date(2026, 1, 1), 366)


def test_unknown_key_in_a_town_file_names_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "town.yaml"
    path.write_text(SMALL_TOWN.replace("kwp: 60}", "kwp: 60, colour: red}"))
    with pytest.raises(ConfigError) as info:
        load_town(path)
    assert info.value.field == "plants.0.colour"
    assert info.value.where == "town.yaml, line 8"


def test_render_shows_unavailable_values_as_dashes(tmp_path: Path) -> None:
    path = tmp_path / "town.yaml"
    path.write_text(SMALL_TOWN)
    town = load_town(path)
    text = render(town, Readout(), datetime(2026, 6, 21, 10, tzinfo=UTC), 60)
    assert "2026-06-21 12:00 Europe/Berlin" in text
    h1 = next(line for line in text.splitlines() if line.startswith("h1"))
    assert "—" in h1
    assert "0" not in h1.split()[1:]  # nothing unread is shown as zero


async def test_demo_reads_every_simulated_device_through_the_production_drivers(
    tmp_path: Path, mqtt_broker: object
) -> None:
    path = tmp_path / "town.yaml"
    path.write_text(SMALL_TOWN)
    host, port = mqtt_broker.host, mqtt_broker.port  # type: ignore[attr-defined]
    out = io.StringIO()
    readout = await run_demo(
        config=path, duration_s=6.0, broker_url=f"mqtt://{host}:{port}", refresh_s=0.5, out=out
    )
    # every Modbus device answered through SunSpec discovery or its register template
    assert set(readout.modbus) == {"h1-meter", "h1-pv", "h1-battery", "h2-meter", "plant"}
    assert readout.value("plant", "power_w") is not None
    assert 0 < readout.value("plant", "power_w") <= 60_000  # type: ignore[operator]
    assert readout.value("h1-battery", "soc_pct") is not None
    assert readout.value("h2-meter", "power_w") is not None
    assert readout.value("h2-meter", "power_w") > 0  # type: ignore[operator]  # no PV: imports
    # the streetlights reported over MQTT, and the lighting controller decided their levels:
    # at noon in June the program has them off, with the reason on record
    assert set(readout.lights) == {"ring-01", "ring-02", "ring-03"}
    assert set(readout.decisions) == {"ring-01", "ring-02", "ring-03"}
    assert all(d.level_pct == 0 for d in readout.decisions.values())
    assert all(d.reasons for d in readout.decisions.values())
    assert all(s.level_pct == 0 for s in readout.lights.values())
    assert "Waldstadt demo: broker" in out.getvalue()
    assert "street ring" in out.getvalue()
    assert "why ring-01 at 0 %" in out.getvalue()
