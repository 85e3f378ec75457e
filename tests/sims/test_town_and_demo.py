"""The simulated town from YAML: the default town loads, its lighting programs hold every night
of a year, and a bad town file is one clear error. (The demo itself: tests/sims/test_demo.py;
the default town running: tests/sims/test_demo_town.py.)"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kernel.config import validate_data
from kernel.errors import ConfigError
from lighting.config import LightingConfig
from lighting.program import check_program
from sims.demo_site import demo_lighting_data
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
    site = validate_data(LightingConfig, demo_lighting_data(town), "demo_lighting.yaml").site
    assert site is not None
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


def test_a_small_explicit_town_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "town.yaml"
    path.write_text(SMALL_TOWN)
    town = load_town(path)
    assert [h.prefix for h in town.households] == ["h1", "h2"]
    assert town.households[1].kwp is None
    assert town.households[1].meter == "sunspec"
    assert town.plants[0].meter is None  # a plant without a grid meter: inverter only
    assert town.household_groups == []
