"""The demo town of issue 7: the town file format with household groups, the default town, and
the site document of the running town, validated by the site loader and read device by device
through the production drivers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.clock import ManualClock
from kernel.errors import ConfigError
from kernel.readings import Quality
from protocols.modbus.connection import ModbusPool
from protocols.modbus.factory import open_device
from scheduler.site import site_from_data
from sims.demo_site import COMMUNITY_ID, demo_site_data
from sims.town import DEFAULT_TOWN, SimTown, TownConfig, load_town

GROUP_TOWN = """\
name: Gruppendorf
households:
  - {prefix: solo, gateway: gw-solo, annual_kwh: 3000, kwp: 6}
household_groups:
  - prefix: hh
    count: 12
    gateway: blk
    per_gateway: 5
    seed: 7
    with_pv: 9
    with_battery: 4
    with_ev: 3
    with_heater: 2
    with_sunspec_meter: 4
buildings:
  - {prefix: school, name: Schule, gateway: gw-school, profile: G25, annual_kwh: 60000, kwp: 50}
"""


def test_the_default_town_is_the_issues_quarter() -> None:
    town = load_town(DEFAULT_TOWN)
    homes = town.households
    assert len(homes) == 60
    assert sum(1 for h in homes if h.kwp) >= 40  # most have PV
    assert 15 <= sum(1 for h in homes if h.battery_wh) <= 25  # about a third
    assert all(h.kwp for h in homes if h.battery_wh)
    assert sum(1 for h in homes if h.ev) == 8
    assert sum(1 for h in homes if h.heater) == 6
    assert {h.meter for h in homes} == {"sdm630", "sunspec"}
    per_gateway = Counter(h.gateway for h in homes)
    assert max(per_gateway.values()) <= 10  # one gateway port per ten houses
    assert [b.profile for b in town.buildings] == ["G25"]
    assert town.buildings[0].kwp is not None
    assert town.buildings[0].kwp > max(h.kwp or 0 for h in homes)
    assert [(p.kwp, p.meter) for p in town.plants] == [(750.0, "sunspec")]
    assert len(town.streets) == 4
    assert all(s.luminaires == 25 and s.sensor_dev_eui for s in town.streets)
    assert {s.network for s in town.streets} == {"chirpstack", "tts"}


def test_household_groups_vary_per_house_and_are_the_same_every_time(tmp_path: Path) -> None:
    path = tmp_path / "town.yaml"
    path.write_text(GROUP_TOWN)
    town = load_town(path)
    again = load_town(path)
    assert town == again
    assert [h.prefix for h in town.households] == ["solo"] + [f"hh{i:02d}" for i in range(1, 13)]
    group = town.households[1:]
    assert Counter(h.gateway for h in group) == {"blk-1": 5, "blk-2": 5, "blk-3": 2}
    assert sum(1 for h in group if h.kwp) == 9
    assert sum(1 for h in group if h.battery_wh) == 4
    assert sum(1 for h in group if h.ev) == 3
    assert sum(1 for h in group if h.heater) == 2
    assert sum(1 for h in group if h.meter == "sunspec") == 4
    assert len({h.annual_kwh for h in group}) > 6  # not twelve copies
    assert all(1800 <= h.annual_kwh <= 6000 for h in group)
    # a dumped and re-read config is the same town (generated houses are not doubled)
    assert TownConfig.model_validate(town.model_dump()) == town
    # another seed, another town
    other = tmp_path / "other.yaml"
    other.write_text(GROUP_TOWN.replace("seed: 7", "seed: 8"))
    assert load_town(other).households != town.households


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ("with_battery: 4", "with_battery: 10", "household_groups.0", "more than with_pv"),
        ("with_ev: 3", "with_ev: 13", "household_groups.0", "more than count"),
        ("prefix: solo", "prefix: hh01", "", "clashes"),
        ("per_gateway: 5", "per_gatway: 5", "household_groups.0.per_gatway", "unknown key"),
    ],
)
def test_bad_town_files_name_the_key_and_the_reason(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    path = tmp_path / "town.yaml"
    path.write_text(GROUP_TOWN.replace(old, new))
    with pytest.raises(ConfigError, match=reason) as info:
        load_town(path)
    if field:
        assert info.value.field == field
    assert info.value.where is not None
    assert info.value.where.startswith("town.yaml")


async def test_the_default_town_runs_and_its_site_validates_device_by_device(
    mqtt_broker: object,
) -> None:
    """SimTown starts the whole default town; its site document validates with the site
    loader, and every device of it answers through the production driver it names."""
    town = load_town(DEFAULT_TOWN)
    clock = ManualClock(datetime(2026, 11, 25, 11, 0, tzinfo=UTC))  # noon in Iserlohn
    host, port = mqtt_broker.host, mqtt_broker.port  # type: ignore[attr-defined]
    async with SimTown(town, clock, host, port) as sim, ModbusPool(timeout_s=3.0) as pool:
        endpoints = sim.modbus.endpoints
        site = site_from_data(demo_site_data(town, endpoints), "demo")
        assert {d.name for d in site.devices} == set(endpoints)
        for d in site.devices:
            ep = endpoints[d.name]
            assert (d.host, d.port, d.unit_id) == (ep.host, ep.port, ep.unit_id)
        assert len(site.members) == 60 + 1 + 1  # households, the school, the plant
        community = site.community(COMMUNITY_ID)
        assert len(community.members) == len(site.members)
        assert [k.kind for k in community.keys] == ["dynamic"]
        assert site.lighting is not None
        assert len(site.lighting.luminaires) == 100
        assert len(sim.light_ids) == 100
        assert len(sim.sensors) == 4
        # each street's counter is listened to on the network server it publishes through
        networks = {st.sensor_dev_eui: st.network for st in town.streets}
        assert {s.id: s.network for s in site.lighting.sensors} == networks
        assert site.lighting.site.networks == {"chirpstack", "tts"}
        assert len(sim.modbus.gateways) == 6 + 2

        async def read(name: str, driver: str) -> tuple[str, dict[str, float | None]]:
            ep = endpoints[name]
            dev = await open_device(name, driver, ep.host, ep.port, ep.unit_id, pool, clock)
            readings = await dev.read()
            assert all(r.quality is not Quality.UNAVAILABLE for r in readings if r.channel in (
                "power_w", "load_power_w", "battery_power_w", "import_energy_wh"
            )), name  # fmt: skip
            return name, {r.channel: r.value for r in readings}

        values = dict(await asyncio.gather(*(read(d.name, d.driver) for d in site.devices)))
    assert set(values) == set(endpoints)
    # every meter reads import and export energy; the plant exports at noon
    for member in site.members:
        assert values[member.meter]["import_energy_wh"] is not None
        assert values[member.meter]["export_energy_wh"] is not None
    plant = values["stadtwerk-pv-meter"]["power_w"]
    assert plant is not None
    assert plant < -10_000
    school = site.member("school")
    assert school.load_profile == "G25"
    assert values["school-meter"]["power_w"] is not None
