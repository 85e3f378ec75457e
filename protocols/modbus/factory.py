"""Open a Modbus device by driver name, the way a site file names it.

``driver: sunspec`` discovers the SunSpec model chain; any other name is a register template
in ``protocols/templates/`` (``eastron_sdm630``, ``battery_inverter`` …). Devices behind the
same ``host:port`` share the pool's connection.
"""

from __future__ import annotations

from kernel.clock import Clock
from kernel.errors import ConfigError
from protocols.modbus.connection import ModbusPool
from protocols.modbus.driver import TemplateDevice, template_device
from protocols.modbus.template import load_template, template_names
from protocols.sunspec.device import SunSpecInverter, SunSpecMeter, open_sunspec

SUNSPEC = "sunspec"


def known_drivers() -> list[str]:
    return [SUNSPEC, *template_names()]


async def open_device(
    device_id: str,
    driver: str,
    host: str,
    port: int,
    unit_id: int,
    pool: ModbusPool,
    clock: Clock,
) -> TemplateDevice | SunSpecInverter | SunSpecMeter:
    """A driver for the device. SunSpec discovery talks to the device, so it raises
    ``DeviceUnavailable`` when the device is away (try again later); a template driver is
    built without I/O and reports unavailability through its readings."""
    if not 1 <= unit_id <= 247:
        raise ConfigError(f"{device_id}.unit_id", f"{unit_id} is outside 1..247")
    conn = pool.connection(host, port)
    if driver == SUNSPEC:
        return await open_sunspec(device_id, conn, unit_id, clock)
    if driver not in template_names():
        raise ConfigError(
            f"{device_id}.driver", f"unknown driver {driver!r}; known: {', '.join(known_drivers())}"
        )
    return template_device(device_id, load_template(driver), conn, unit_id, clock)
