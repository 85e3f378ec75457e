"""The site document of the running demo town (the format of ``scheduler/site.py``).

The demo runs the same service a Stadtwerk runs against real devices; its site file is
generated from the town, with the loopback addresses the simulated gateways got::

    async with SimTown(town, clock, host, port) as sim:
        site = site_from_data(demo_site_data(town, sim.modbus.endpoints))

Every simulated Modbus device is a device of the site (SunSpec inverters by discovery, the
rest by their register template); every household and building is a member behind its grid
meter; each PV plant with a grid meter is a producer member; all of them share energy in one
community, ``waldstadt-quartier``, under a dynamic key, with German prices of 2026. The
lighting section is ``sims/demo_lighting.yaml`` (programs, calendars, segments) with the
town's luminaires and traffic sensors, so the controller commands exactly the simulated nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernel.config import parse_yaml
from kernel.errors import ConfigError
from sims.modbus.battery import DEFAULT_MAX_W as BATTERY_MAX_W
from sims.modbus.fleet import Endpoint
from sims.town import HouseholdSpec, PlantSpec, TownConfig, light_ids

DEFAULT_LIGHTING = Path(__file__).with_name("demo_lighting.yaml")

COMMUNITY_ID = "waldstadt-quartier"
TARIFF_NAME = "waldstadt-2026"
#: German prices (EUR/kWh, quoted: exact decimals): household supply, the community's price for
#: shared energy, and the feed-in tariff for surplus.
TARIFF: dict[str, str] = {
    "name": TARIFF_NAME,
    "valid_from": "2025-01-01T00:00:00+01:00",
    "supplier_price_eur_per_kwh": "0.32",
    "community_price_eur_per_kwh": "0.22",
    "feed_in_price_eur_per_kwh": "0.08",
}
#: German grid mix, g CO₂ per kWh
EMISSION_FACTOR_G_PER_KWH = 380
DISPATCH: dict[str, Any] = {
    "horizon_qh": 96,
    "solve_time_limit_s": 30.0,
    "revert_s": 900,
    "poll_interval_s": 60.0,
    "read_timeout_s": 2.0,
}
SETTLEMENT: dict[str, Any] = {"final_at": "01:00"}

#: Surnames for the households' display names (a member's name is private to the member and
#: the operator; the demo needs some).
_SURNAMES = (
    "Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Braun", "Hofmann", "Zimmermann", "Schmitt", "Hartmann", "Krüger", "Werner",
    "Lange", "Schmitz", "Krause", "Meier", "Lehmann", "Köhler", "Yılmaz", "Kaya", "Nowak",
    "Kowalski", "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters",
    "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich",
    "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann",
)  # fmt: skip


def _driver(ep: Endpoint) -> str:
    return "sunspec" if ep.kind == "sunspec_inverter" else ep.kind


def _hhmm(value: Any) -> str:
    return f"{value:%H:%M}"


def _device(name: str, endpoints: Mapping[str, Endpoint]) -> str:
    if name not in endpoints:
        raise KeyError(f"the town has {name!r} but no simulator endpoint answers for it")
    return name


def _member(index: int, h: HouseholdSpec, endpoints: Mapping[str, Endpoint]) -> dict[str, Any]:
    p = h.prefix
    name = h.name or f"Familie {_SURNAMES[index % len(_SURNAMES)]}"
    member: dict[str, Any] = {
        "id": p,
        "name": name,
        "meter": _device(f"{p}-meter", endpoints),
        "load_profile": h.profile,
        "annual_kwh": h.annual_kwh,
    }
    if h.kwp:
        member["pv"] = [
            {"device": _device(f"{p}-pv", endpoints), "rated_power_w": round(h.kwp * 1000.0)}
        ]
    if h.battery_wh:
        member["battery"] = {
            "device": _device(f"{p}-battery", endpoints),
            "capacity_wh": h.battery_wh,
            "max_charge_w": BATTERY_MAX_W,
            "max_discharge_w": BATTERY_MAX_W,
        }
    if h.ev is not None:
        member["ev"] = {
            "device": _device(f"{p}-ev", endpoints),
            "max_power_w": h.ev.max_w,
            "energy_needed_wh": h.ev.energy_need_wh,
            "arrival": _hhmm(h.ev.arrival),
            "departure": _hhmm(h.ev.departure),
            "smart_charging": h.ev.smart_charging,
        }
    if h.heater is not None:
        member["storage_heater"] = {
            "device": _device(f"{p}-heater", endpoints),
            "max_power_w": h.heater.max_w,
            "energy_needed_wh": h.heater.energy_need_wh,
            "window_start": _hhmm(h.heater.window_start),
            "window_end": _hhmm(h.heater.window_end),
        }
    return member


def _producer(plant: PlantSpec, endpoints: Mapping[str, Endpoint]) -> dict[str, Any]:
    return {
        "id": plant.name,
        "name": plant.display_name or plant.name,
        "meter": _device(f"{plant.name}-meter", endpoints),
        "load_profile": "G25",
        "annual_kwh": plant.own_use_kwh,
        "pv": [{"device": _device(plant.name, endpoints), "rated_power_w": plant.kwp * 1000.0}],
    }


def demo_lighting_data(town: TownConfig, path: Path = DEFAULT_LIGHTING) -> dict[str, Any]:
    """The lighting section: programs, calendars and segments from ``path``; one luminaire
    per pole and the traffic sensors from the town. A street of the town without a segment
    in the file gets a copy of the file's first one."""
    data, _ = parse_yaml(path.read_text(encoding="utf-8"), path.name)
    if not isinstance(data, dict):
        raise ConfigError(
            "<file>", "a lighting file is a mapping (programs, calendars …)", path.name
        )
    segments: list[dict[str, Any]] = data.setdefault("segments", [])
    known = {seg.get("id") for seg in segments}
    for st in town.streets:
        if st.name not in known and segments:
            segments.append({**segments[0], "id": st.name})
    data["luminaires"] = [
        {"id": node, "segment": st.name, "street": st.name, "pole": pole,
         "rated_power_w": st.rated_power_w}
        for st in town.streets
        for pole, node in enumerate(light_ids(st), start=1)
    ]  # fmt: skip
    data["sensors"] = [
        {"id": st.sensor_dev_eui, "segment": st.name, "street": st.name,
         "pole": (st.luminaires + 1) // 2, "network": st.network}
        for st in town.streets
        if st.sensor_dev_eui
    ]  # fmt: skip
    return data


def demo_site_data(
    town: TownConfig,
    endpoints: Mapping[str, Endpoint],
    lighting_path: Path = DEFAULT_LIGHTING,
) -> dict[str, Any]:
    """The site document of the running ``town``; ``endpoints`` are where its simulated
    Modbus devices answer (``SimTown.modbus.endpoints``). Validate it with
    ``scheduler.site.site_from_data``. A device of the town without an endpoint is a
    ``KeyError``."""
    devices = [
        {"name": ep.name, "driver": _driver(ep), "host": ep.host, "port": ep.port,
         "unit_id": ep.unit_id}
        for ep in sorted(endpoints.values(), key=lambda e: (e.gateway, e.unit_id))
    ]  # fmt: skip
    members = [_member(i, h, endpoints) for i, h in enumerate(town.members)]
    members += [_producer(p, endpoints) for p in town.plants if p.meter]
    community = {
        "id": COMMUNITY_ID,
        "name": f"Energiegemeinschaft {town.name}",
        "members": [{"member": m["id"]} for m in members],
        "keys": [{"kind": "dynamic"}],
        "tariffs": [TARIFF_NAME],
        "emission_factor_g_per_kwh": EMISSION_FACTOR_G_PER_KWH,
    }
    return {
        "site": {
            "name": town.name,
            "latitude": town.latitude,
            "longitude": town.longitude,
            "timezone": town.timezone,
            "state": town.state,
        },
        "devices": devices,
        "tariffs": [dict(TARIFF)],
        "members": members,
        "communities": [community] if members else [],
        "dispatch": dict(DISPATCH),
        "settlement": dict(SETTLEMENT),
        "lighting": demo_lighting_data(town, lighting_path),
    }


__all__ = [
    "COMMUNITY_ID",
    "DEFAULT_LIGHTING",
    "demo_lighting_data",
    "demo_site_data",
]
