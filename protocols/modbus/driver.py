"""The generic template driver: one class reads any register template.

:func:`template_device` builds a driver for a template and gives it exactly the capability
protocols the template can serve: ``ReadsPowerW`` when it has a ``power_w`` channel,
``ReadsEnergyWh`` with ``import_energy_wh`` and ``export_energy_wh``, ``AcceptsBatteryPowerW``
with a ``battery_power_w`` setpoint, ``AcceptsLoadPowerW`` with a ``load_power_w`` setpoint (EV
charger, storage heater). ``isinstance(dev, ReadsPowerW)`` therefore tells the truth.

A poll plans block reads over all channel and scale-factor registers (≤ 125 registers per
request, nearby registers merged), decodes, scales and maps "not implemented" values to
absent readings. A device that does not answer yields ``Reading.unavailable`` for every
channel (logged once down, once up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from kernel.clock import Clock
from kernel.errors import DeviceProtocolError, DeviceUnavailable
from kernel.readings import Reading, unit_for
from protocols.modbus.availability import Availability
from protocols.modbus.blocks import Block, RegisterImage, plan_blocks
from protocols.modbus.codec import SF_LIMIT, SIZE, decode, encode, is_not_implemented
from protocols.modbus.connection import ModbusConnection, Table
from protocols.modbus.template import Register, Setpoint, Template


@dataclass(frozen=True, slots=True)
class _Field:
    channel: str
    table: Table
    address: int
    type: str
    word_order: str
    scale: float
    sf: tuple[Table, int] | None
    inverted: bool
    not_implemented: tuple[int, ...]
    sunspec_sentinels: bool


def _field(channel: str, reg: Register, template: Template) -> _Field:
    d = template.defaults
    table = reg.table or d.table
    sf = None
    if reg.scale_factor is not None:
        sf = (reg.scale_factor.table or table, reg.scale_factor.address)
    return _Field(
        channel=channel,
        table=table,
        address=reg.address,
        type=reg.type or d.type,
        word_order=reg.word_order or d.word_order,
        scale=reg.factor,
        sf=sf,
        inverted=reg.sign == "inverted",
        not_implemented=reg.not_implemented,
        sunspec_sentinels=d.sentinels == "sunspec",
    )


class TemplateDevice:
    """A device described by a :class:`~protocols.modbus.template.Template`."""

    def __init__(
        self,
        device_id: str,
        template: Template,
        conn: ModbusConnection,
        unit_id: int,
        clock: Clock,
        availability: Availability | None = None,
    ) -> None:
        self._device_id = device_id
        self.template = template
        self.conn = conn
        self.unit_id = unit_id
        self.clock = clock
        self.availability = availability or Availability(device_id, clock)
        self._fields = tuple(_field(ch, reg, template) for ch, reg in template.channels.items())
        self.channels = tuple(f.channel for f in self._fields)
        spans: dict[Table, list[tuple[int, int]]] = {"holding": [], "input": []}
        for f in self._fields:
            spans[f.table].append((f.address, SIZE[f.type]))
            if f.sf is not None:
                spans[f.sf[0]].append((f.sf[1], 1))
        self._plan: tuple[tuple[Table, tuple[Block, ...]], ...] = tuple(
            (table, tuple(plan_blocks(s, max_gap=template.max_gap)))
            for table, s in spans.items()
            if s
        )
        self._applied: dict[str, tuple[float, int]] = {}
        self._written_at = 0.0

    @property
    def device_id(self) -> str:
        return self._device_id

    async def _read_images(self) -> dict[Table, RegisterImage]:
        images: dict[Table, RegisterImage] = {}
        for table, blocks in self._plan:
            data = [
                await self.conn.read(
                    self.unit_id, table, b.address, b.count, device_id=self._device_id
                )
                for b in blocks
            ]
            images[table] = RegisterImage(blocks, data)
        return images

    def _value(self, f: _Field, images: dict[Table, RegisterImage]) -> float | None:
        regs = images[f.table].window(f.address, SIZE[f.type])
        raw = decode(regs, f.type, "big" if f.word_order == "big" else "little")
        if isinstance(raw, float):
            if not math.isfinite(raw):
                return None
        elif raw in f.not_implemented or (f.sunspec_sentinels and is_not_implemented(raw, f.type)):
            return None
        value = float(raw) * f.scale
        if f.sf is not None:
            sf_raw = images[f.sf[0]].window(f.sf[1], 1)[0]
            sf = sf_raw - 0x10000 if sf_raw >= 0x8000 else sf_raw
            if sf_raw == 0x8000 or not -SF_LIMIT <= sf <= SF_LIMIT:
                return None  # not implemented, or a broken exponent
            value *= 10.0**sf
        return -value if f.inverted else value

    @property
    def unavailable_reason(self) -> str | None:
        """Why the device is down (None while it answers)."""
        return None if self.availability.available else self.availability.reason

    async def read(self) -> list[Reading]:
        """All channels at one instant; absent or unreadable ones as ``Reading.unavailable``."""
        ts = self.clock.now()
        if not self.availability.due():
            return self._unavailable(ts)
        try:
            images = await self._read_images()
        except (DeviceUnavailable, DeviceProtocolError) as exc:
            self.availability.failed(exc.reason)
            return self._unavailable(ts)
        self.availability.succeeded()
        return [self._reading(f.channel, self._value(f, images), ts) for f in self._fields]

    def _reading(self, channel: str, value: float | None, ts: datetime) -> Reading:
        if value is None:
            return Reading.unavailable(self._device_id, channel, ts)
        return Reading(self._device_id, channel, value, unit_for(channel), ts)

    def _unavailable(self, ts: datetime) -> list[Reading]:
        return [Reading.unavailable(self._device_id, ch, ts) for ch in self.channels]

    async def read_channel(self, channel: str) -> Reading:
        """One channel (polls the whole device: one consistent instant)."""
        if channel not in self.channels:
            raise KeyError(f"{self._device_id}: template {self.template.name} has no {channel}")
        for r in await self.read():
            if r.channel == channel:
                return r
        raise AssertionError("unreachable: read() returns every channel")

    async def write_setpoint(self, name: str, value: float, revert_s: int | None = None) -> None:
        """Write setpoint ``name``: value, then revert time, then enable (template order).

        The value must lie within the setpoint's ``min``/``max``; the raw register value is
        ``value / (scale × unit factor)`` (negated for ``sign: inverted``), rounded for
        integer types."""
        sp: Setpoint | None = self.template.setpoints.get(name)
        if sp is None:
            raise KeyError(
                f"{self._device_id}: template {self.template.name} has no setpoint {name}"
            )
        if (sp.min is not None and value < sp.min) or (sp.max is not None and value > sp.max):
            raise ValueError(
                f"{self._device_id}: setpoint {name}={value} outside [{sp.min}, {sp.max}]"
            )
        type_ = sp.type or self.template.defaults.type
        order = sp.word_order or self.template.defaults.word_order
        raw = (-value if sp.sign == "inverted" else value) / sp.factor
        regs = encode(raw if type_.startswith("float") else round(raw), type_, order)
        await self.conn.write(self.unit_id, sp.address, regs, device_id=self._device_id)
        if sp.revert is not None:
            if revert_s is None:
                raise ValueError(f"{self._device_id}: setpoint {name} needs a revert time")
            await self.conn.write(
                self.unit_id,
                sp.revert.address,
                encode(revert_s, sp.revert.type),
                device_id=self._device_id,
            )
        if sp.enable is not None:
            await self.conn.write(
                self.unit_id, sp.enable.address, [sp.enable.on_value], device_id=self._device_id
            )

    async def _write_once(self, name: str, value: float, revert_s: int, command_id: str) -> None:
        """Write setpoint ``name`` clamped to its limits, unless ``command_id`` was just
        applied with the same value and revert time (idempotence). "Just" means within half
        the revert time: a repeat after that is the refresh that keeps the setpoint from
        reverting (the controller's CommandWriter sends it), so it is written."""
        fresh = revert_s == 0 or self.clock.monotonic() - self._written_at < revert_s / 2
        if self._applied.get(command_id) == (value, revert_s) and fresh:
            return
        sp = self.template.setpoints[name]
        lo = sp.min if sp.min is not None else value
        hi = sp.max if sp.max is not None else value
        await self.write_setpoint(name, min(hi, max(lo, value)), revert_s)
        self._applied = {command_id: (value, revert_s)}
        self._written_at = self.clock.monotonic()


class _ReadsPower:
    async def read_power_w(self: TemplateDevice) -> Reading:  # type: ignore[misc]
        """Total active power in W (at a grid point: + = import)."""
        return await self.read_channel("power_w")


class _ReadsEnergy:
    async def read_import_energy_wh(self: TemplateDevice) -> Reading:  # type: ignore[misc]
        return await self.read_channel("import_energy_wh")

    async def read_export_energy_wh(self: TemplateDevice) -> Reading:  # type: ignore[misc]
        return await self.read_channel("export_energy_wh")


class _AcceptsBattery:
    async def set_battery_power_w(  # type: ignore[misc]
        self: TemplateDevice, power_w: float, revert_s: int, command_id: str
    ) -> None:
        """Charge (+) / discharge (−) in W, clamped to the setpoint's limits; the same
        command id with the same values is applied once."""
        await self._write_once("battery_power_w", power_w, revert_s, command_id)


class _AcceptsLoad:
    async def set_load_power_w(  # type: ignore[misc]
        self: TemplateDevice, power_w: float, revert_s: int, command_id: str
    ) -> None:
        """Draw ``power_w`` W (EV charger, storage heater), clamped to the setpoint's limits;
        the device goes back to its own schedule ``revert_s`` seconds after the last write.
        The same command id with the same values is applied once. The §14a floor is the
        decider's (and the device's) business, not the driver's."""
        await self._write_once("load_power_w", power_w, revert_s, command_id)


@cache
def _driver_class(power: bool, energy: bool, battery: bool, load: bool) -> type[TemplateDevice]:
    bases: list[type] = []
    if power:
        bases.append(_ReadsPower)
    if energy:
        bases.append(_ReadsEnergy)
    if battery:
        bases.append(_AcceptsBattery)
    if load:
        bases.append(_AcceptsLoad)
    if not bases:
        return TemplateDevice
    name = "TemplateDevice_" + "_".join(b.__name__.strip("_") for b in bases)
    return type(name, (*bases, TemplateDevice), {})


def template_device(
    device_id: str,
    template: Template,
    conn: ModbusConnection,
    unit_id: int,
    clock: Clock,
    availability: Availability | None = None,
) -> TemplateDevice:
    """A driver for ``template`` carrying the capability protocols the template can serve."""
    cls = _driver_class(
        "power_w" in template.channels,
        "import_energy_wh" in template.channels and "export_energy_wh" in template.channels,
        "battery_power_w" in template.setpoints,
        "load_power_w" in template.setpoints,
    )
    return cls(device_id, template, conn, unit_id, clock, availability)
