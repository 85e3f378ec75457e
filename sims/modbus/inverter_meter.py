"""A simulated PV inverter with its grid meter on the same unit id, as SolarEdge units serve
them: one SunSpec chain at 40000 with the inverter's models (1, 103, 120, 123) followed by
the meter's own common model (1) and a three-phase wye meter (203).

The inverter behaves as :class:`~sims.modbus.inverter.SunSpecInverterSim`. The meter sits at
the household's grid connection point: its power is the household's consumption minus the
inverter's output (positive = import, the SunSpec meter convention), so at noon it reports
export (−2,150 W while the inverter produces 7,345 W, say) -- exactly the values a driver
must not mix up. Its import and export registers integrate that power and only ever grow.
"""

from __future__ import annotations

from typing import ClassVar

from kernel.clock import Clock
from sims.modbus.inverter import SunSpecInverterSim
from sims.modbus.sunspec_image import Raw, scaled
from sims.profiles import ClearSkyPv, HouseholdLoad


class InverterWithMeterSim(SunSpecInverterSim):
    """PV inverter of ``rated_w`` and a 203 meter of a household with ``load`` behind it."""

    #: The meter's scale factors (W in W, energy in Wh).
    METER_SF: ClassVar[dict[str, int]] = {"A": -2, "V": -1, "Hz": -2, "W": 0, "TotWh": 0}

    def __init__(
        self,
        clock: Clock,
        *,
        rated_w: float = 10_000.0,
        pv: ClearSkyPv | None = None,
        load: HouseholdLoad | None = None,
        cloud_seed: int | None = 0,
        import_wh: float = 2_000_000.0,
        export_wh: float = 500_000.0,
        serial: str = "SIM-INV-M-1",
    ) -> None:
        # set before the inverter's constructor, which builds the chain and refreshes
        self.load = load or HouseholdLoad()
        self.import_wh = import_wh
        self.export_wh = export_wh
        self.meter_power_w = 0.0
        self._meter_t: float | None = None
        super().__init__(clock, rated_w=rated_w, pv=pv, cloud_seed=cloud_seed, serial=serial)

    def _chain(self, serial: str) -> list[tuple[int, dict[str, Raw]]]:
        sf = self.METER_SF
        meter_common: dict[str, Raw] = {"Mn": "Waldstadt Sim", "Md": "Meter-203",
                                        "SN": f"{serial}-M", "DA": 2}  # fmt: skip
        meter: dict[str, Raw] = {"A_SF": sf["A"], "V_SF": sf["V"], "Hz_SF": sf["Hz"],
                                 "W_SF": sf["W"], "TotWh_SF": sf["TotWh"]}  # fmt: skip
        return [*super()._chain(serial), (1, meter_common), (203, meter)]

    def refresh(self) -> None:
        super().refresh()  # the inverter's output now
        now = self.clock.monotonic()
        if self._meter_t is not None and now > self._meter_t:
            # power held between requests (rectangle rule), as the grid meters of sims do
            energy_wh = self.meter_power_w * (now - self._meter_t) / 3600.0
            if energy_wh >= 0:
                self.import_wh += energy_wh
            else:
                self.export_wh -= energy_wh
        self._meter_t = now
        self.meter_power_w = self.load.power_w(self.clock.now()) - self.power_w
        self._publish_meter()

    def _publish_meter(self) -> None:
        p, sf, img = self.meter_power_w, self.METER_SF, self.image
        img.set(203, "W", scaled(p, sf["W"]))
        img.set(203, "Hz", scaled(50.0, sf["Hz"]))
        img.set(203, "A", scaled(abs(p) / 230.0, sf["A"]))
        for ph in "ABC":
            img.set(203, f"PhVph{ph}", scaled(230.0, sf["V"]))
            img.set(203, f"Aph{ph}", scaled(abs(p) / 3 / 230.0, sf["A"]))
            img.set(203, f"Wph{ph}", scaled(p / 3, sf["W"]))
        img.set(203, "TotWhImp", int(self.import_wh))
        img.set(203, "TotWhExp", int(self.export_wh))


__all__ = ["InverterWithMeterSim"]
