"""Simulated grid meters: an Eastron SDM630 and a SunSpec 203 meter.

Both measure a :class:`Household` at its grid connection point: consumption (a BDEW profile
scaled to an annual kWh) plus the wallbox and the storage heater, minus PV, plus battery
charging (minus discharging), positive = import. Their import and export
registers integrate that power and only ever grow.

The SDM630 map here is written from the datasheet (input registers, float32 big-endian,
address = register − 30001), independently of the YAML template that reads it, so a test of
the template against this simulator checks the template.
"""

from __future__ import annotations

import abc
import math
import struct
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from kernel.clock import Clock
from sims.modbus.server import SimUnit
from sims.modbus.sunspec_image import SunSpecImage, scaled
from sims.profiles import HouseholdLoad

_MAX_STEP_S = 60.0


class PowerSource(Protocol):
    """Anything with a present power in W (PV: + = producing; battery: + = charging; a
    controllable load: + = drawing)."""

    power_w: float

    def refresh(self) -> None: ...


@dataclass
class Household:
    """Net power at the grid point = load + EV + heater − PV + battery charging (+ = import).

    Also a school's or a PV plant's grid point (with a G25 load, or the plant's own small
    consumption)."""

    load: HouseholdLoad = field(default_factory=HouseholdLoad)
    pv: PowerSource | None = None
    battery: PowerSource | None = None
    ev: PowerSource | None = None
    heater: PowerSource | None = None

    def net_w(self, clock: Clock) -> float:
        total = self.load.power_w(clock.now())
        for source, sign in (
            (self.pv, -1.0),
            (self.battery, 1.0),
            (self.ev, 1.0),
            (self.heater, 1.0),
        ):
            if source is not None:
                source.refresh()
                total += sign * source.power_w
        return total


class _GridMeter(SimUnit, abc.ABC):
    """Integrates the household's net power into import/export energy (Wh, monotonic)."""

    def __init__(self, clock: Clock, household: Household, import_wh: float, export_wh: float):
        super().__init__()
        self.clock = clock
        self.household = household
        self.import_wh = import_wh
        self.export_wh = export_wh
        self.power_w = 0.0
        self._t = clock.monotonic()

    def refresh(self) -> None:
        now = self.clock.monotonic()
        p = self.household.net_w(self.clock)
        dt = now - self._t
        if dt > 0:
            # power is sampled at request times; between them it is held (rectangle rule)
            e = self.power_w * dt / 3600.0
            if e >= 0:
                self.import_wh += e
            else:
                self.export_wh -= e
        self._t = now
        self.power_w = p
        self._publish()

    @abc.abstractmethod
    def _publish(self) -> None:
        """Write the present values into the register image."""


def _f32(value: float) -> list[int]:
    return list(struct.unpack(">2H", struct.pack(">f", value)))


class Sdm630Sim(_GridMeter):
    """Eastron SDM630 (input registers, float32): per-phase V/A/W, total W, Hz, kWh."""

    def __init__(
        self,
        clock: Clock,
        household: Household | None = None,
        *,
        import_wh: float = 1_234_000.0,
        export_wh: float = 321_000.0,
        voltage_v: float = 230.0,
    ) -> None:
        super().__init__(clock, household or Household(), import_wh, export_wh)
        self.voltage_v = voltage_v
        self._regs = self.add_bank("input", 0, [0] * 80)
        self.refresh()

    def _publish(self) -> None:
        p = self.power_w
        b = self._regs
        for i in range(3):
            b.put(0 + 2 * i, _f32(self.voltage_v))  # 30001/3/5 phase voltage
            b.put(6 + 2 * i, _f32(abs(p) / 3 / self.voltage_v))  # 30007/9/11 current
            b.put(12 + 2 * i, _f32(p / 3))  # 30013/15/17 phase power
        b.put(52, _f32(p))  # 30053 total system power
        b.put(70, _f32(50.0))  # 30071 frequency
        b.put(72, _f32(self.import_wh / 1000.0))  # 30073 import kWh
        b.put(74, _f32(self.export_wh / 1000.0))  # 30075 export kWh


class SunSpecMeterSim(_GridMeter):
    """SunSpec three-phase wye meter: models 1 and 203 chained at ``base``.

    The power and current scale factors fit ``max_power_w`` the way a real meter's CT ratio
    does: a PV plant's meter reports W in tens or hundreds (W is int16)."""

    SF: ClassVar[dict[str, int]] = {"A": -2, "V": -1, "Hz": -2, "W": 0, "TotWh": 0}

    def __init__(
        self,
        clock: Clock,
        household: Household | None = None,
        *,
        import_wh: float = 2_000_000.0,
        export_wh: float = 500_000.0,
        base: int = 40000,
        max_power_w: float = 30_000.0,
    ) -> None:
        super().__init__(clock, household or Household(), import_wh, export_wh)
        sf = dict(self.SF)
        if max_power_w > 32_000:
            sf["W"] = math.ceil(math.log10(max_power_w / 32_000))
        amps = max_power_w / 230.0
        sf["A"] = -2 if amps < 320 else (-1 if amps < 3_200 else 0)
        self.sf = sf
        self.image = SunSpecImage(
            base,
            [
                (1, {"Mn": "Waldstadt Sim", "Md": "Meter-203", "SN": "SIM-M-1", "DA": 1}),
                (
                    203,
                    {
                        "A_SF": sf["A"],
                        "V_SF": sf["V"],
                        "Hz_SF": sf["Hz"],
                        "W_SF": sf["W"],
                        "TotWh_SF": sf["TotWh"],
                    },
                ),
            ],
        )
        self.add_bank("holding", base, self.image.registers)
        self.refresh()

    def _publish(self) -> None:
        p = self.power_w
        sf = self.sf
        img = self.image
        img.set(203, "W", scaled(p, sf["W"]))
        img.set(203, "Hz", scaled(50.0, sf["Hz"]))
        img.set(203, "A", scaled(abs(p) / 230.0, sf["A"]))
        for ph in "ABC":
            img.set(203, f"PhVph{ph}", scaled(230.0, sf["V"]))
            img.set(203, f"Aph{ph}", scaled(abs(p) / 3 / 230.0, sf["A"]))
            img.set(203, f"Wph{ph}", scaled(p / 3, sf["W"]))
        img.set(203, "TotWhImp", int(self.import_wh))
        img.set(203, "TotWhExp", int(self.export_wh))
