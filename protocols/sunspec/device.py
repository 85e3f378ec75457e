"""The SunSpec driver: discover once, then poll only the models a cycle needs.

:func:`open_sunspec` discovers the model chain and returns a :class:`SunSpecInverter`
(ReadsPowerW, AcceptsPowerLimitPct when model 123 or 704 is present) or a
:class:`SunSpecMeter` (ReadsPowerW, ReadsEnergyWh). A poll reads the measurement model, the
nameplate and the control model with as few block reads as the map allows (they usually sit
back to back: one request), decodes them with precomputed plans and maps them to canonical
readings (see :mod:`protocols.sunspec.mapping`).

A device that does not answer gives ``Reading.unavailable`` for every channel, logged once
when it goes and once when it returns (:class:`~protocols.modbus.availability.Availability`).

An inverter whose chain also holds meter models (the inverter and its grid meter on one unit
id, as SolarEdge units serve them) reads them in the same request but keeps them apart: its
own channels come from its inverter models only, each meter's from its meter model, under the
meter's own device id (:func:`~protocols.sunspec.mapping.meter_part_id`, ``<name>:meter``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from kernel.clock import Clock
from kernel.errors import DeviceProtocolError, DeviceUnavailable
from kernel.readings import Quality, Reading, unit_for
from protocols.modbus.availability import Availability
from protocols.modbus.blocks import Block, RegisterImage, plan_blocks
from protocols.modbus.codec import encode
from protocols.modbus.connection import ModbusConnection
from protocols.sunspec.decode import DecodePlan, Value, build_plan, plan_for
from protocols.sunspec.discovery import ModelLocation, SunSpecMap, discover
from protocols.sunspec.mapping import (
    CONTROL_MODELS,
    DER_MEASURE_MODEL,
    INVERTER_MODELS,
    METER_MODELS,
    canonical,
    channels_for,
    has_meter_parts,
    meter_part_id,
    points_used,
)
from protocols.sunspec.models import model_def

#: Models read on every poll (when present); the rest only on demand.
POLLED_MODELS = (*INVERTER_MODELS, *METER_MODELS, DER_MEASURE_MODEL, 120, *CONTROL_MODELS)


class SunSpecDevice:
    """A discovered SunSpec device behind ``conn`` at ``unit_id``."""

    def __init__(
        self,
        device_id: str,
        conn: ModbusConnection,
        unit_id: int,
        sunspec_map: SunSpecMap,
        clock: Clock,
        availability: Availability | None = None,
    ) -> None:
        self._device_id = device_id
        self.conn = conn
        self.unit_id = unit_id
        self.map = sunspec_map
        self.clock = clock
        self.availability = availability or Availability(device_id, clock)
        self._polled: tuple[ModelLocation, ...] = tuple(
            m for m in sunspec_map.models if m.id in POLLED_MODELS
        )
        self._blocks = plan_blocks([(m.address, m.count) for m in self._polled], max_gap=0)
        #: the meters sharing this unit id, by their device ids (see the module doc)
        parts = has_meter_parts(tuple(m.id for m in self._polled))
        meters = [m for m in self._polled if parts and m.id in METER_MODELS]
        self.meter_parts: dict[str, ModelLocation] = {
            meter_part_id(device_id, i): m for i, m in enumerate(meters)
        }
        own = tuple(m.id for m in self._polled if m not in meters)
        self.channels = channels_for(own)
        self._units = tuple((ch, unit_for(ch)) for ch in self.channels)
        self._part_units = {
            part: tuple((ch, unit_for(ch)) for ch in channels_for((m.id,)))
            for part, m in self.meter_parts.items()
        }
        # a poll decodes only the points the canonical mapping uses
        self._poll_plans: dict[int, DecodePlan] = {}
        for m in self._polled:
            used = points_used(m.id)
            self._poll_plans[m.id] = (
                plan_for(m.id) if used is None else build_plan(model_def(m.id), used)
            )
        #: the last decoded models (by id), e.g. for scale factors of writes
        self.last_models: dict[int, dict[str, Value]] = {}

    @property
    def device_id(self) -> str:
        return self._device_id

    async def read_models(
        self,
        locations: Sequence[ModelLocation],
        plans: dict[int, DecodePlan] | None = None,
    ) -> dict[int, dict[str, Value]]:
        """Read and decode the given models (block reads of ≤ 125 registers); all points
        unless ``plans`` narrows a model's decoding. By model id: of two models with one id,
        the later wins (:meth:`read_locations` keeps both)."""
        return {m.id: v for m, v in (await self.read_locations(locations, plans)).items()}

    async def read_locations(
        self,
        locations: Sequence[ModelLocation],
        plans: dict[int, DecodePlan] | None = None,
    ) -> dict[ModelLocation, dict[str, Value]]:
        """:meth:`read_models` by model location."""
        blocks = (
            self._blocks
            if locations is self._polled
            else plan_blocks([(m.address, m.count) for m in locations], max_gap=0)
        )
        data = [
            await self.conn.read(
                self.unit_id, "holding", b.address, b.count, device_id=self._device_id
            )
            for b in blocks
        ]
        if len(blocks) == 1:  # the usual case: the polled models sit back to back
            first, everything = blocks[0].address, data[0]

            def window(address: int, count: int) -> list[int]:
                return everything[address - first : address - first + count]
        else:
            window = RegisterImage(blocks, data).window
        out: dict[ModelLocation, dict[str, Value]] = {}
        for m in locations:
            regs = window(m.address, m.count)
            if regs[0] != m.id:
                raise DeviceProtocolError(
                    self._device_id,
                    f"model {m.id} expected at {m.address}, found id {regs[0]}: map changed",
                )
            plan = plans.get(m.id) if plans is not None else None
            out[m] = (plan or plan_for(m.id)).decode(regs)
        return out

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The register blocks one read of this device asks for, in order."""
        return tuple(self._blocks)

    @property
    def unavailable_reason(self) -> str | None:
        """Why the device is down (None while it answers)."""
        return None if self.availability.available else self.availability.reason

    async def read(self) -> list[Reading]:
        """All canonical channels at one instant; unavailable ones as ``Reading.unavailable``."""
        ts = self.clock.now()
        if not self.availability.due():
            return self._unavailable(ts)
        try:
            decoded = await self.read_locations(self._polled, self._poll_plans)
        except (DeviceUnavailable, DeviceProtocolError) as exc:
            self.availability.failed(exc.reason)
            self._polled_failed()
            return self._unavailable(ts)
        self.availability.succeeded()
        parts = self.meter_parts
        meters = set(parts.values())
        models = {m.id: v for m, v in decoded.items() if m not in meters}
        self.last_models = models
        self._polled_ok(models)
        utc_ts = ts.astimezone(UTC)
        out = _readings(self._device_id, canonical(models), self._units, utc_ts)
        for part, m in parts.items():
            out += _readings(part, canonical({m.id: decoded[m]}), self._part_units[part], utc_ts)
        return out

    def _polled_ok(self, models: dict[int, dict[str, Value]]) -> None:
        """Hook: a poll decoded ``models``."""

    def _polled_failed(self) -> None:
        """Hook: a poll failed (the device is away, restarting or its map changed)."""

    def _unavailable(self, ts: datetime) -> list[Reading]:
        out = [Reading.unavailable(self._device_id, ch, ts) for ch in self.channels]
        for part, units in self._part_units.items():
            out += [Reading.unavailable(part, ch, ts) for ch, _unit in units]
        return out

    async def _channel(self, channel: str) -> Reading:
        for r in await self.read():
            if r.channel == channel and r.device_id == self._device_id:
                return r
        return Reading.unavailable(self._device_id, channel, self.clock.now())

    async def read_power_w(self) -> Reading:
        """AC power in W (meter: + = import; inverter: + = producing)."""
        return await self._channel("power_w")


def _readings(
    device_id: str,
    values: dict[str, float | None],
    units: tuple[tuple[str, str], ...],
    ts: datetime,
) -> list[Reading]:
    good, absent = Quality.GOOD, Quality.UNAVAILABLE
    # decoded values are finite floats (sentinels, NaN and inf are absent): checked
    return [
        Reading.prechecked(device_id, ch, v, unit, ts, good)
        if (v := values.get(ch)) is not None
        else Reading(device_id, ch, None, unit, ts, absent)
        for ch, unit in units
    ]


class SunSpecMeter(SunSpecDevice):
    """Meter models 201–204: ReadsPowerW, ReadsEnergyWh."""

    async def read_import_energy_wh(self) -> Reading:
        return await self._channel("import_energy_wh")

    async def read_export_energy_wh(self) -> Reading:
        return await self._channel("export_energy_wh")


class SunSpecInverter(SunSpecDevice):
    """Inverter models 101–103/111–113/701; with 123 or 704 it takes power limits.

    The control model's scale factor (``WMaxLimPct_SF``) is a constant of the model
    instance, so a limit write does not read it again: it is kept from the last successful
    poll (which decodes it anyway) or from one read of the control model when no poll has
    seen it. It is forgotten whenever it may have changed or be wrong: a poll that fails
    (the device is away, restarting, or its model map moved: a new instance may carry other
    scale factors) and a limit write that fails. The next write then reads it again.

    A limit of 100 % is no limit: it switches the limit off (one write of the enable point)
    instead of writing and enabling 100 % (three writes) — and writes nothing when the limit
    is known to be off already: seen off by a poll that no write of ours overlapped, or
    switched off by our last write. Nothing can lapse then, so a refresh writes nothing
    either. (The dispatch asks every PV inverter for 100 % whenever it does not curtail.)
    """

    SF_POINT = "WMaxLimPct_SF"

    def __init__(
        self,
        device_id: str,
        conn: ModbusConnection,
        unit_id: int,
        sunspec_map: SunSpecMap,
        clock: Clock,
        availability: Availability | None = None,
    ) -> None:
        super().__init__(device_id, conn, unit_id, sunspec_map, clock, availability)
        self._control = sunspec_map.first_of(*CONTROL_MODELS)
        #: the control model's WMaxLimPct_SF while known to be current (see the class doc)
        self._limit_sf: int | None = None
        self._enable_point = (
            "WMaxLim_Ena" if self._control is None or self._control.id == 123 else "WMaxLimPctEna"
        )
        #: writes to the control model so far, and their count when the latest poll began
        self._writes = 0
        self._writes_at_poll = 0
        #: whether the limit is known to be off (see the class doc)
        self._limit_off = False
        self._applied: dict[str, tuple[float, int]] = {}
        #: clock-monotonic time of the last write of the applied command
        self._written_at = 0.0

    @property
    def accepts_power_limit(self) -> bool:
        return self._control is not None

    @property
    def limit_sf(self) -> int | None:
        """The cached WMaxLimPct_SF (``None``: the next write reads the control model)."""
        return self._limit_sf

    def forget_scale_factor(self) -> None:
        """Read the control model's scale factor again before the next limit write."""
        self._limit_sf = None

    @property
    def limit_off(self) -> bool:
        """Whether the power limit is known to be off (a 100 % limit then writes nothing)."""
        return self._limit_off

    async def read(self) -> list[Reading]:
        self._writes_at_poll = self._writes
        return await super().read()

    def _polled_ok(self, models: dict[int, dict[str, Value]]) -> None:
        if self._control is None:
            return
        controls = models.get(self._control.id, {})
        sf = controls.get(self.SF_POINT)
        self._limit_sf = sf if isinstance(sf, int) else None
        # a write of ours during the poll may have landed after the registers were read
        self._limit_off = controls.get(self._enable_point) == 0 and (
            self._writes == self._writes_at_poll
        )

    def _polled_failed(self) -> None:
        self._limit_sf = None
        self._limit_off = False

    async def _scale_factor(self, loc: ModelLocation) -> int:
        if self._limit_sf is None:
            sf = (await self.read_models([loc]))[loc.id].get(self.SF_POINT)
            if not isinstance(sf, int):
                raise DeviceProtocolError(
                    self._device_id, f"model {loc.id}: {self.SF_POINT} not implemented"
                )
            self._limit_sf = sf
        return self._limit_sf

    async def _write_point(self, loc: ModelLocation, point: str, raw: int) -> None:
        self._writes += 1
        self._limit_off = False
        p = plan_for(loc.id).model.point(point)
        await self.conn.write(
            self.unit_id, loc.address + p.offset, encode(raw, p.type), device_id=self._device_id
        )

    async def write_limit(self, limit_pct: float, revert_s: int) -> None:
        """Write the limit: percentage (with its scale factor), revert time, enable — in this
        order, so the device never enables a stale percentage. Used by the keeper to refresh."""
        loc = self._control
        if loc is None:
            raise DeviceProtocolError(self._device_id, "has no control model (123 or 704)")
        if not 0.0 <= limit_pct <= 100.0:
            raise ValueError(f"{self._device_id}: limit_pct {limit_pct} outside 0..100")
        if not 0 <= revert_s <= 0xFFFF:
            raise ValueError(f"{self._device_id}: revert_s {revert_s} outside 0..65535")
        sf = await self._scale_factor(loc)
        raw_pct = round(limit_pct / 10.0**sf)
        revert = "WMaxLimPct_RvrtTms" if loc.id == 123 else "WMaxLimPctRvrtTms"
        try:
            await self._write_point(loc, "WMaxLimPct", raw_pct)
            await self._write_point(loc, revert, revert_s)
            await self._write_point(loc, self._enable_point, 1)
        except BaseException:
            # refused or unanswered: the device may have restarted with another map; a
            # cancelled write (a timeout) leaves the same doubt
            self._limit_sf = None
            raise

    async def set_power_limit_pct(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        """AcceptsPowerLimitPct: the same command id with the same values is applied once —
        until half of its revert time has passed since it was written: then the repeat is the
        refresh that keeps the limit from reverting (sent by ``scheduler.cycle.CommandWriter``,
        the one refresh mechanism of the service) and is written again. 100 % switches the
        limit off, or writes nothing when it is known to be off (see the class doc)."""
        if self._applied.get(command_id) == (limit_pct, revert_s) and (
            revert_s == 0 or self.clock.monotonic() - self._written_at < revert_s / 2
        ):
            return
        if limit_pct == 100.0:
            await self._switch_limit_off()
        else:
            await self.write_limit(limit_pct, revert_s)
        self._applied = {command_id: (limit_pct, revert_s)}
        self._written_at = self.clock.monotonic()

    async def clear_power_limit(self, command_id: str) -> None:
        if self._applied.get(command_id) == (100.0, 0):
            return
        await self._switch_limit_off()
        self._applied = {command_id: (100.0, 0)}

    async def _switch_limit_off(self) -> None:
        loc = self._control
        if loc is None:
            raise DeviceProtocolError(self._device_id, "has no control model (123 or 704)")
        if self._limit_off:
            return
        await self._write_point(loc, self._enable_point, 0)
        self._limit_off = True


async def open_sunspec(
    device_id: str,
    conn: ModbusConnection,
    unit_id: int,
    clock: Clock,
    availability: Availability | None = None,
) -> SunSpecInverter | SunSpecMeter:
    """Discover the device's models and return the matching driver."""
    smap = await discover(conn, unit_id, device_id=device_id)
    if (
        smap.first_of(*METER_MODELS) is not None
        and smap.first_of(*INVERTER_MODELS, DER_MEASURE_MODEL) is None
    ):
        return SunSpecMeter(device_id, conn, unit_id, smap, clock, availability)
    if smap.first_of(*INVERTER_MODELS, DER_MEASURE_MODEL) is None:
        raise DeviceProtocolError(
            device_id, f"SunSpec models {list(smap.ids)}: neither an inverter nor a meter"
        )
    return SunSpecInverter(device_id, conn, unit_id, smap, clock, availability)
