"""``waldstadt check-site``: does each device of a site answer, through the production path?

Every device is opened the way the runtime opens it (one :class:`ModbusPool` connection per
gateway, :func:`protocols.modbus.factory.open_device`, SunSpec discovery included) and read
once. Gateways are checked concurrently; the devices behind one gateway one after the other,
as the gateway serves one request at a time anyway, so that a silent unit cannot eat its
neighbours' time budget. Each device gets ``timeout_s`` (real seconds) and its own result line;
an unreachable device is a result, never an exception.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from kernel.clock import Clock
from kernel.errors import ConfigError, DeviceProtocolError, DeviceUnavailable
from kernel.readings import Reading
from protocols.modbus.connection import ModbusPool
from protocols.modbus.driver import TemplateDevice
from protocols.modbus.factory import open_device
from protocols.sunspec.device import SunSpecInverter, SunSpecMeter
from scheduler.site import DeviceConfig, Site

Status = Literal["ok", "unreachable", "error"]


@dataclass(frozen=True, slots=True)
class DeviceCheck:
    """One device's outcome. ``detail`` is one line: what was read, or why nothing was."""

    name: str
    driver: str
    address: str
    status: Status
    detail: str
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class SiteSummary:
    members: int
    communities: int
    devices: int
    luminaires: int
    programs: int

    def line(self) -> str:
        """``5 members, 1 community, 10 devices, 6 luminaires, 2 programs``."""
        counts = (
            (self.members, "member", "members"),
            (self.communities, "community", "communities"),
            (self.devices, "device", "devices"),
            (self.luminaires, "luminaire", "luminaires"),
            (self.programs, "program", "programs"),
        )
        return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)


@dataclass(frozen=True, slots=True)
class SiteCheckReport:
    summary: SiteSummary
    devices: tuple[DeviceCheck, ...]

    @property
    def all_ok(self) -> bool:
        return all(d.ok for d in self.devices)

    @property
    def failed(self) -> tuple[DeviceCheck, ...]:
        return tuple(d for d in self.devices if not d.ok)


def summarize(site: Site) -> SiteSummary:
    lighting = site.lighting
    return SiteSummary(
        members=len(site.members),
        communities=len(site.communities),
        devices=len(site.devices),
        luminaires=len(lighting.luminaires) if lighting is not None else 0,
        programs=len(lighting.programs) if lighting is not None else 0,
    )


def _meter_roles(site: Site) -> dict[str, str]:
    """device name → key path of the member's meter that names it."""
    return {m.meter: f"members.{i}.meter" for i, m in enumerate(site.members)}


def _describe(
    device: TemplateDevice | SunSpecInverter | SunSpecMeter, readings: list[Reading]
) -> str:
    if isinstance(device, SunSpecMeter):
        kind = f"SunSpec meter, models {list(device.map.ids)}"
    elif isinstance(device, SunSpecInverter):
        kind = f"SunSpec inverter, models {list(device.map.ids)}"
    else:
        kind = f"template {device.template.name}"
    good = [r for r in readings if r.available]
    text = f"{kind}; {len(good)}/{len(readings)} channels read"
    power = next((r for r in good if r.channel == "power_w"), None)
    if power is not None and power.value is not None:
        text += f", power_w {power.value:.0f} W"
    return text


async def _check_one(
    cfg: DeviceConfig,
    pool: ModbusPool,
    clock: Clock,
    timeout_s: float,
    meter_of: str | None,
) -> DeviceCheck:
    address = f"{cfg.host}:{cfg.port} unit {cfg.unit_id}"
    conn = pool.connection(cfg.host, cfg.port)
    # the device's own request timeout, within the check's budget (one device at a time per
    # gateway, so setting it here affects nobody else)
    conn.timeout_s = min(cfg.timeout_s, timeout_s)
    started = clock.monotonic()

    def result(status: Status, detail: str) -> DeviceCheck:
        elapsed = (clock.monotonic() - started) / (clock.speed or 1.0)
        return DeviceCheck(cfg.name, cfg.driver, address, status, detail, round(elapsed, 3))

    try:
        async with asyncio.timeout(timeout_s):
            device = await open_device(
                cfg.name, cfg.driver, cfg.host, cfg.port, cfg.unit_id, pool, clock
            )
            readings = await device.read()
    except TimeoutError:
        if not conn.connected:
            return result("unreachable", f"no connection to {conn.name} within {timeout_s:g} s")
        return result("unreachable", f"no answer within {timeout_s:g} s")
    except DeviceUnavailable as exc:
        return result("unreachable", exc.reason)
    except (DeviceProtocolError, ConfigError) as exc:
        return result("error", str(exc))
    if not device.availability.available:
        return result("unreachable", device.availability.reason or "no answer")
    if meter_of is not None and isinstance(device, SunSpecInverter):
        return result(
            "error",
            f"{meter_of} names it as a grid-point meter, but it is a SunSpec inverter "
            f"(models {list(device.map.ids)})",
        )
    return result("ok", _describe(device, readings))


async def _check_gateway(
    devices: list[DeviceConfig],
    pool: ModbusPool,
    clock: Clock,
    timeout_s: float,
    meters: dict[str, str],
) -> list[DeviceCheck]:
    """The devices behind one gateway, in turn. When the gateway itself cannot be reached,
    the rest are reported at once instead of each waiting out its own timeout."""
    results: list[DeviceCheck] = []
    for cfg in devices:
        conn = pool.connection(cfg.host, cfg.port)
        first_down = next((r for r in results if r.status == "unreachable"), None)
        if first_down is not None and not conn.connected:
            results.append(
                DeviceCheck(
                    cfg.name,
                    cfg.driver,
                    f"{cfg.host}:{cfg.port} unit {cfg.unit_id}",
                    "unreachable",
                    f"gateway {conn.name} not reachable (see {first_down.name})",
                    0.0,
                )
            )
            continue
        results.append(await _check_one(cfg, pool, clock, timeout_s, meters.get(cfg.name)))
    return results


async def check_site(site: Site, clock: Clock, *, timeout_s: float = 2.0) -> SiteCheckReport:
    """Open and read every device of ``site`` once; report each, in the site's order."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    gateways: dict[tuple[str, int], list[DeviceConfig]] = defaultdict(list)
    for cfg in site.devices:
        gateways[(cfg.host, cfg.port)].append(cfg)
    meters = _meter_roles(site)
    async with ModbusPool(timeout_s=timeout_s, clock=clock) as pool, asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(
                _check_gateway(devs, pool, clock, timeout_s, meters),
                name=f"check-site {host}:{port}",
            )
            for (host, port), devs in gateways.items()
        ]
    results = {check.name: check for task in tasks for check in task.result()}
    return SiteCheckReport(summarize(site), tuple(results[cfg.name] for cfg in site.devices))
