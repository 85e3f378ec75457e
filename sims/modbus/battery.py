"""A simulated battery inverter speaking the ``battery_inverter`` template.

Input registers: 0 SoC (0.1 %), 1–2 battery power W (int32, + = charging), 3–4 stored energy
Wh (uint32), 5 max charge W, 6 max discharge W, 7 state (0 idle, 1 charging, 2 discharging,
3 full, 4 empty). Holding registers: 100–101 power setpoint W (int32), 102 revert time s,
103 enable.

It follows the setpoint within its power limits and its energy (no charging when full, no
discharging when empty), and goes back to idle by itself when the setpoint is not rewritten
within the revert time. State advances from the injected clock on every request.
"""

from __future__ import annotations

import math

from kernel.clock import Clock
from protocols.modbus.codec import decode, encode
from sims.modbus.server import SimUnit

_MAX_STEP_S = 60.0
#: charge and discharge limit in W of a battery that does not say otherwise
DEFAULT_MAX_W = 5_000.0
IDLE, CHARGING, DISCHARGING, FULL, EMPTY = 0, 1, 2, 3, 4


class BatterySim(SimUnit):
    """Battery of ``capacity_wh`` with power limits in W, starting at ``soc_pct``."""

    def __init__(
        self,
        clock: Clock,
        *,
        capacity_wh: float = 10_000.0,
        max_charge_w: float = DEFAULT_MAX_W,
        max_discharge_w: float = DEFAULT_MAX_W,
        soc_pct: float = 50.0,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.capacity_wh = capacity_wh
        self.max_charge_w = max_charge_w
        self.max_discharge_w = max_discharge_w
        self.stored_wh = capacity_wh * soc_pct / 100.0
        self.setpoint_w = 0.0
        self.revert_s = 0
        self.enabled = False
        self.written_at = clock.monotonic()
        self.reverts = 0
        self.power_w = 0.0
        self._inputs = self.add_bank("input", 0, [0] * 8)
        self._holding = self.add_bank("holding", 100, [0] * 4)
        self.writable = {100, 101, 102, 103}
        self._t = clock.monotonic()
        self.refresh()

    @property
    def soc_pct(self) -> float:
        return 100.0 * self.stored_wh / self.capacity_wh

    def _target_w(self, at: float) -> float:
        if self.enabled and self.revert_s and at - self.written_at >= self.revert_s:
            self.enabled = False
            self.setpoint_w = 0.0
            self._holding.put(100, [*encode(0, "int32"), self.revert_s, 0])
            self.reverts += 1
        if not self.enabled:
            return 0.0
        return max(-self.max_discharge_w, min(self.max_charge_w, self.setpoint_w))

    def _power_w(self, target: float) -> float:
        if target > 0 and self.stored_wh >= self.capacity_wh:
            return 0.0
        if target < 0 and self.stored_wh <= 0.0:
            return 0.0
        return target

    def _deadline(self) -> float:
        """Clock-monotonic instant at which the setpoint reverts (inf when it never does)."""
        if self.enabled and self.revert_s:
            return self.written_at + self.revert_s
        return math.inf

    def refresh(self) -> None:
        now = self.clock.monotonic()
        t = self._t
        # integrate in steps that end at the revert instant, so the energy is exact
        while t < now:
            end = min(t + _MAX_STEP_S, now)
            deadline = self._deadline()
            if t < deadline < end:
                end = deadline
            p = self._power_w(self._target_w(t))
            self.stored_wh = min(
                self.capacity_wh, max(0.0, self.stored_wh + p * (end - t) / 3600.0)
            )
            t = end
        self._t = now
        target = self._target_w(now)
        self.power_w = self._power_w(target)
        self._publish(target)

    def _publish(self, target: float) -> None:
        if self.power_w > 0:
            state = CHARGING
        elif self.power_w < 0:
            state = DISCHARGING
        elif target > 0:
            state = FULL
        elif target < 0:
            state = EMPTY
        else:
            state = IDLE
        regs = [
            round(self.soc_pct * 10),
            *encode(round(self.power_w), "int32"),
            *encode(round(self.stored_wh), "uint32"),
            round(self.max_charge_w),
            round(self.max_discharge_w),
            state,
        ]
        self._inputs.put(0, regs)

    def on_write(self, address: int, values: list[int]) -> None:
        regs = self._holding.get(100, 4)
        self.setpoint_w = float(decode(regs[0:2], "int32"))
        self.revert_s = regs[2]
        self.enabled = regs[3] == 1
        self.written_at = self.clock.monotonic()
        self.refresh()
