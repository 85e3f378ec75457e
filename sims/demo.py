"""``waldstadt demo``: a simulated town on loopback, read through the production drivers.

What it starts: an MQTT broker (embedded amqtt unless ``--broker`` names one), the simulated
town of ``sims/default_town.yaml`` (or ``--config``) on a simulated clock, and then the same
code a real site runs: the Modbus pool with SunSpec discovery and register templates, the MQTT
bus with the streetlight and LoRaWAN decoders. Every few seconds it prints what those drivers
read. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lighting.config import LightingConfig, LightingSite
from lighting.tick import LuminaireDecision
from protocols.clock import Clock, SimClock
from protocols.errors import DeviceUnavailable
from protocols.lorawan.ingest import subscribe_uplinks
from protocols.lorawan.uplink import Uplink
from protocols.modbus.connection import ModbusPool
from protocols.modbus.factory import SUNSPEC, open_device
from protocols.modbus.poller import PolledDevice, poll
from protocols.model import Reading
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig
from protocols.mqtt.embedded import EmbeddedBroker
from protocols.streetlight import LightState, StreetlightController
from protocols.yamlconf import parse_yaml, validate_data
from scheduler.lighting.config import LightingServiceConfig
from scheduler.lighting.service import LightingService
from sims.town import DEFAULT_TOWN, SimTown, TownConfig, light_ids, load_town

DEFAULT_LIGHTING = Path(__file__).with_name("demo_lighting.yaml")

log = logging.getLogger(__name__)


@dataclass
class Readout:
    """What the production drivers have seen so far (latest value per device and channel)."""

    modbus: dict[str, dict[str, Reading]] = field(default_factory=dict)
    lights: dict[str, LightState] = field(default_factory=dict)
    traffic: dict[str, Reading] = field(default_factory=dict)
    decisions: dict[str, LuminaireDecision] = field(default_factory=dict)
    rejected: int = 0

    def value(self, device: str, channel: str) -> float | None:
        r = self.modbus.get(device, {}).get(channel)
        return None if r is None else r.value


def _fmt(value: float | None, width: int = 8, digits: int = 0) -> str:
    return "—".rjust(width) if value is None else f"{value:{width}.{digits}f}"


def render(town: TownConfig, readout: Readout, now: datetime, speed: float) -> str:
    """The live readout as text (pure; tested)."""
    tz = ZoneInfo(town.timezone)
    lines = [
        f"== {town.name} — {now.astimezone(tz):%Y-%m-%d %H:%M} {town.timezone} "
        f"(simulated, {speed:g}× real time)",
        f"{'household':<12}{'grid W':>9}{'PV W':>9}{'battery W':>11}{'SoC %':>8}   (+ = import)",
    ]
    for h in town.households:
        p = h.prefix
        lines.append(
            f"{p:<12}{_fmt(readout.value(f'{p}-meter', 'power_w'), 9)}"
            f"{_fmt(readout.value(f'{p}-pv', 'power_w'), 9)}"
            f"{_fmt(readout.value(f'{p}-battery', 'battery_power_w'), 11)}"
            f"{_fmt(readout.value(f'{p}-battery', 'soc_pct'), 8, 1)}"
        )
    for plant in town.plants:
        lines.append(f"{plant.name:<12}{'':>9}{_fmt(readout.value(plant.name, 'power_w'), 9)}")
    for street in town.streets:
        states = [s for n, s in readout.lights.items() if n.startswith(f"{street.name}-")]
        level = sum(s.level_pct for s in states) / len(states) if states else None
        power = sum(s.power_w for s in states) if states else None
        count = readout.traffic.get(street.name)
        lines.append(
            f"street {street.name:<14} lights {len(states):>3}/{street.luminaires:<3} "
            f"level {_fmt(level, 5, 1)} %  power {_fmt(power, 6)} W  "
            f"traffic {_fmt(None if count is None else count.value, 4)} veh/10 min"
        )
        decision = readout.decisions.get(f"{street.name}-01")
        if decision is not None:
            lines.append(
                f"  why {street.name}-01 at {decision.level_pct:g} %: {decision.reason_text}"
            )
    lines.append(f"rejected payloads: {readout.rejected}")
    return "\n".join(lines)


def demo_lighting(town: TownConfig, path: Path = DEFAULT_LIGHTING) -> LightingSite:
    """The lighting site of the demo: programs, calendars and segments from ``path``; the
    luminaires (one per pole) and traffic sensors from the town, so they match the nodes. A
    street of the town without a segment in the file gets a copy of the file's first one."""
    data, lines = parse_yaml(path.read_text(encoding="utf-8"), path.name)
    segments = data.setdefault("segments", [])
    known = {seg.get("id") for seg in segments}
    for st in town.streets:  # a street the file does not describe gets the first one's rules
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
         "pole": (st.luminaires + 1) // 2}
        for st in town.streets
        if st.sensor_dev_eui
    ]  # fmt: skip
    site = validate_data(LightingConfig, data, path.name, lines).site
    assert site is not None
    return site


def demo_start(tz: str) -> datetime:
    """Today at 05:30 local: the demo opens at dawn, lights still on, PV about to start."""
    zone = ZoneInfo(tz)
    today = datetime.now(UTC).astimezone(zone).date()
    return datetime.combine(today, time(5, 30), zone).astimezone(UTC)


@contextlib.contextmanager
def _broker(broker_url: str | None) -> Iterator[tuple[str, int, str]]:
    if broker_url:
        parts = urlsplit(broker_url)
        yield parts.hostname or "127.0.0.1", parts.port or 1883, broker_url
        return
    with EmbeddedBroker() as embedded:
        yield embedded.host, embedded.port, f"embedded amqtt on 127.0.0.1:{embedded.port}"


async def _open_drivers(town: SimTown, pool: ModbusPool, clock: Clock) -> list[PolledDevice]:
    drivers: list[PolledDevice] = []
    for name, ep in sorted(town.modbus.endpoints.items()):
        driver = SUNSPEC if ep.kind == "sunspec_inverter" else ep.kind
        for attempt in range(20):
            try:
                drivers.append(
                    await open_device(name, driver, ep.host, ep.port, ep.unit_id, pool, clock)
                )
                break
            except DeviceUnavailable:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.1)
    return drivers


async def run_demo(
    *,
    speed: float | None = None,
    config: Path | None = None,
    duration_s: float | None = None,
    broker_url: str | None = None,
    refresh_s: float = 2.0,
    out: TextIO | None = None,
) -> Readout:
    """Run the demo until Ctrl-C (or ``duration_s`` real seconds); returns the last readout."""
    stream: TextIO = out if out is not None else sys.stdout
    town_cfg = load_town(config or DEFAULT_TOWN)
    clock_speed = speed if speed is not None else town_cfg.speed
    clock = SimClock(town_cfg.start or demo_start(town_cfg.timezone), clock_speed)
    readout = Readout()
    loop = asyncio.get_running_loop()
    deadline = None if duration_s is None else loop.time() + duration_s

    with _broker(broker_url) as (host, port, broker_desc):
        async with (
            SimTown(town_cfg, clock, host, port) as town,
            ModbusPool(clock=clock, timeout_s=1.0) as pool,
            Bus(BusConfig(client_id="waldstadt-demo-controller", host=host, port=port)) as bus,
        ):
            drivers = await _open_drivers(town, pool, clock)
            lights = StreetlightController(bus)
            lighting = LightingService(
                clock, bus, demo_lighting(town_cfg),
                LightingServiceConfig(tick_s=60.0, timezone=town_cfg.timezone),
            )  # fmt: skip

            async def on_state(node_id: str, state: LightState) -> None:
                readout.lights[node_id] = state

            street_of_sensor = {f"traffic-{s.name}": s.name for s in town_cfg.streets}

            async def on_uplink(readings: list[Reading], uplink: Uplink) -> None:
                street = street_of_sensor.get(uplink.device_name, uplink.device_name)
                for r in readings:
                    if r.channel == "vehicle_count":
                        readout.traffic[street] = r

            await lights.watch_states(on_state)
            await subscribe_uplinks(bus, on_uplink, network="chirpstack")
            await subscribe_uplinks(bus, on_uplink, network="tts")
            print(
                f"Waldstadt demo: broker {broker_desc}; {len(drivers)} Modbus devices on "
                f"{len(town.modbus.gateways)} gateways; {len(town.light_ids)} streetlights; "
                f"{len(town.sensors)} traffic sensors. Ctrl-C stops.",
                file=stream,
                flush=True,
            )
            async with lighting:
                while deadline is None or loop.time() < deadline:
                    for device, readings in (await poll(drivers)).items():
                        readout.modbus[device] = {r.channel: r for r in readings}
                    readout.decisions = dict(lighting.decisions)
                    readout.rejected = sum(bus.stats.malformed.values())
                    text = render(town_cfg, readout, clock.now(), clock.speed)
                    print(text, file=stream, flush=True)
                    await asyncio.sleep(refresh_s)
    return readout


__all__ = ["Readout", "demo_start", "render", "run_demo"]
