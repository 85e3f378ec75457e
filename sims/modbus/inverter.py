"""A simulated SunSpec PV inverter: models 1, 103, 120, 123 chained at 40000.

Its AC output follows the clear sky of its site (pvlib) times a cloud factor, capped at the
rating. A power limit written to model 123 (WMaxLimPct with WMaxLimPct_SF = −1, revert time
WMaxLimPct_RvrtTms, WMaxLim_Ena) caps the output while enabled, and the inverter **drops the
limit by itself** when nobody rewrites it within the revert time -- the fail-safe a controller
relies on. The lifetime counter WH grows with the energy produced.

State advances from the injected clock whenever a request arrives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from kernel.clock import Clock
from sims.modbus.server import SimUnit
from sims.modbus.sunspec_image import Raw, SunSpecImage, scaled
from sims.profiles import ClearSkyPv, cloud_factor

#: Scale factors the simulated inverter uses.
SF = {"A": -2, "V": -1, "W": 0, "Hz": -2, "WH": 0, "WRtg": 0, "WMaxLimPct": -1}
_MAX_STEP_S = 60.0


#: The points of model 123 a controller writes to set, enable and time the power limit.
_LIMIT_POINTS = (
    "WMaxLimPct",
    "WMaxLimPct_WinTms",
    "WMaxLimPct_RvrtTms",
    "WMaxLimPct_RmpTms",
    "WMaxLim_Ena",
)


def _scale_factors(rated_w: float) -> dict[str, int]:
    """Scale factors as a real inverter of ``rated_w`` W picks them: large plants report W
    (int16) and the rating (uint16) in tens or hundreds of watts, and currents with fewer
    decimals."""
    sf = dict(SF)
    power_sf = max(0, math.ceil(math.log10(rated_w / 32_000))) if rated_w > 32_000 else 0
    sf["W"] = sf["WRtg"] = power_sf
    amps = rated_w / 230.0
    sf["A"] = -2 if amps < 320 else (-1 if amps < 3_200 else 0)
    return sf


def _models(serial: str, rated_w: float, sf: Mapping[str, int]) -> list[tuple[int, dict[str, Raw]]]:
    """The model chain's initial points: common (1), three-phase inverter (103, its scale
    factors), nameplate (120, the rating in W) and immediate controls (123, no limit)."""
    return [
        (1, {"Mn": "Waldstadt Sim", "Md": "PV-3P", "Vr": "1.0", "SN": serial, "DA": 1}),
        (
            103,
            {
                "A_SF": sf["A"],
                "V_SF": sf["V"],
                "W_SF": sf["W"],
                "Hz_SF": sf["Hz"],
                "WH_SF": sf["WH"],
            },
        ),
        (120, {"DERTyp": 4, "WRtg": scaled(rated_w, sf["WRtg"]), "WRtg_SF": sf["WRtg"]}),
        (
            123,
            {
                "WMaxLimPct": scaled(100.0, SF["WMaxLimPct"]),
                "WMaxLimPct_RvrtTms": 0,
                "WMaxLimPct_WinTms": 0,
                "WMaxLimPct_RmpTms": 0,
                "WMaxLim_Ena": 0,
                "WMaxLimPct_SF": SF["WMaxLimPct"],
            },
        ),
    ]


@dataclass
class LimitState:
    """The curtailment as the inverter holds it."""

    pct: float = 100.0
    revert_s: int = 0
    enabled: bool = False
    written_at: float = 0.0  # clock.monotonic() of the last write to the limit registers


class SunSpecInverterSim(SimUnit):
    """PV inverter with rating ``rated_w``; ``pv`` is its clear-sky curve."""

    def __init__(
        self,
        clock: Clock,
        *,
        rated_w: float = 10_000.0,
        pv: ClearSkyPv | None = None,
        cloud_seed: int | None = 0,
        energy_wh: float = 1_000.0,
        base: int = 40000,
        serial: str = "SIM-INV-1",
    ) -> None:
        super().__init__()
        self.clock = clock
        self.rated_w = rated_w
        self.sf = _scale_factors(rated_w)
        self.pv = pv or ClearSkyPv(kwp=rated_w / 1000.0)
        self.cloud_seed = cloud_seed
        self.energy_wh = energy_wh
        self.limit = LimitState()
        self.reverts = 0  # how many times the limit dropped by itself
        self.image = SunSpecImage(base, self._chain(serial))
        self.add_bank("holding", base, self.image.registers)
        self._limit_regs = {self.image.point_address(123, n): n for n in _LIMIT_POINTS}
        self.writable = set(self._limit_regs)
        self._t = clock.monotonic()
        self.power_w = 0.0
        self.refresh()

    def _chain(self, serial: str) -> list[tuple[int, dict[str, Raw]]]:
        """The model chain's initial points (a subclass may append models)."""
        return _models(serial, self.rated_w, self.sf)

    def available_w(self, at_mono: float) -> float:
        """What the panels could deliver at clock-monotonic ``at_mono``, before any limit."""
        ts = self.clock.now()
        offset = at_mono - self.clock.monotonic()
        if offset:
            ts = ts + timedelta(seconds=offset)
        clear = self.pv.power_w(ts)
        factor = 1.0 if self.cloud_seed is None else cloud_factor(ts, self.cloud_seed)
        return min(self.rated_w, clear * factor)

    def _cap_w(self, at_mono: float) -> float:
        lim = self.limit
        if lim.enabled and lim.revert_s and at_mono - lim.written_at >= lim.revert_s:
            lim.enabled = False
            self.reverts += 1
            self.image.set(123, "WMaxLim_Ena", 0)
        return self.rated_w * lim.pct / 100.0 if lim.enabled else self.rated_w

    def refresh(self) -> None:
        now = self.clock.monotonic()
        t = self._t
        # integrate in steps (≤ 60 s, ending at a revert instant), so a long gap between
        # requests still follows the sun's curve and a revert that happened in between
        while t < now:
            end = min(t + _MAX_STEP_S, now)
            lim = self.limit
            if lim.enabled and lim.revert_s and t < lim.written_at + lim.revert_s < end:
                end = lim.written_at + lim.revert_s
            p = min(self.available_w((t + end) / 2), self._cap_w(t))
            self.energy_wh += p * (end - t) / 3600.0
            t = end
        self._t = now
        self.power_w = min(self.available_w(now), self._cap_w(now))
        self._publish()

    def _publish(self) -> None:
        p = self.power_w
        img = self.image
        img.set(103, "W", scaled(p, self.sf["W"]))
        img.set(103, "WH", max(1, int(self.energy_wh)))
        img.set(103, "Hz", scaled(50.0, SF["Hz"]))
        for ph in "ABC":
            img.set(103, f"PhVph{ph}", scaled(230.0, SF["V"]))
            img.set(103, f"Aph{ph}", scaled(p / 3 / 230.0, self.sf["A"]))
        img.set(103, "A", scaled(p / 230.0, self.sf["A"]))
        throttled = self.limit.enabled and p >= self.rated_w * self.limit.pct / 100.0 - 1.0
        state = 2 if p <= 0 else (5 if throttled else 4)
        img.set(103, "St", state)

    def on_write(self, address: int, values: list[int]) -> None:
        if not any(a in self._limit_regs for a in range(address, address + len(values))):
            return
        img = self.image
        pct_raw = img.get_regs(123, "WMaxLimPct")[0]
        self.limit.pct = min(100.0, pct_raw * 10.0 ** SF["WMaxLimPct"])
        self.limit.revert_s = img.get_regs(123, "WMaxLimPct_RvrtTms")[0]
        self.limit.enabled = img.get_regs(123, "WMaxLim_Ena")[0] == 1
        self.limit.written_at = self.clock.monotonic()
        self.refresh()
