"""Bounds derived from the assets, shared by the reference (PuLP) and the matrix formulation.

Everything here is in LP units: kW for mean power over a quarter-hour, kWh for energy.
Deriving them once keeps the two formulations identical and the LP feasible by construction
(a battery measured below its minimum may climb back as fast as it can, not at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vpp.dispatch.community import (
    QH_H,
    Battery,
    DeferrableLoad,
    EvCharger,
    Member,
    Prices,
    Pv,
)

FloatArray = NDArray[np.float64]


def _window(n_qh: int, start: int, end: int) -> NDArray[np.bool_]:
    mask = np.zeros(n_qh, dtype=bool)
    mask[max(0, start) : max(0, min(end, n_qh))] = True
    return mask


def ev_floor_kw(ev: EvCharger, n_qh: int) -> FloatArray:
    """The §14a floor per quarter-hour in kW: the car charges at least this.

    Without smart charging the car "wants" energy from arrival until the need is met; a dimmed
    car keeps ``min(min_power_w, max_power_w)``. So the floor runs at that power from arrival
    until it alone would have delivered the need (the last quarter-hour partly).
    """
    floor = np.zeros(n_qh)
    if ev.smart_charging:
        return floor
    p_kw = min(ev.min_power_w, ev.max_power_w) / 1000.0
    remaining_kwh = ev.energy_needed_wh / 1000.0
    for t in range(ev.arrival_qh, min(ev.departure_qh, n_qh)):
        if remaining_kwh <= 0 or p_kw <= 0:
            break
        floor[t] = min(p_kw, remaining_kwh / QH_H)
        remaining_kwh -= floor[t] * QH_H
    return floor


@dataclass(frozen=True)
class DeferrableBounds:
    """An energy need over a window: ``need_kwh ≤ Σ 0.25 · p ≤ max_kwh`` (soft low)."""

    lower_kw: FloatArray
    upper_kw: FloatArray
    need_kwh: float
    max_kwh: float


def deferrable_bounds(load: DeferrableLoad, n_qh: int) -> DeferrableBounds:
    """Power bounds per quarter-hour and the energy band of an EV or a storage heater."""
    if isinstance(load, EvCharger):
        upper = np.where(_window(n_qh, load.arrival_qh, load.departure_qh), load.max_power_w, 0.0)
        need = load.energy_needed_wh
        most = load.energy_max_wh if load.energy_max_wh is not None else need
        return DeferrableBounds(ev_floor_kw(load, n_qh), upper / 1000.0, need / 1e3, most / 1e3)
    window = _window(n_qh, load.window_start_qh, load.window_end_qh)
    upper = np.where(window, load.max_power_w, 0.0)
    need = load.energy_needed_wh
    most = load.capacity_wh if load.capacity_wh is not None else need
    return DeferrableBounds(np.zeros(n_qh), upper / 1000.0, need / 1e3, most / 1e3)


def soc_bounds_kwh(b: Battery, n_qh: int) -> tuple[FloatArray, FloatArray]:
    """Bounds on the state of charge at the end of each quarter-hour, in kWh.

    A battery measured below ``min_soc_wh`` may only climb back at full charge power, so the
    lower bound rises from the measured value; this keeps the LP feasible whatever was measured.
    """
    steps = np.arange(1, n_qh + 1)
    soc0 = b.soc_wh / 1e3
    climb = soc0 + steps * (b.max_charge_w / 1e3) * QH_H * b.charge_efficiency
    lower = np.minimum(b.min_soc_wh / 1e3, climb)
    upper = np.full(n_qh, max(b.capacity_wh / 1e3, soc0))
    return lower, upper


def pv_forecast_kw(member: Member, n_qh: int) -> tuple[FloatArray, FloatArray]:
    """The member's total PV forecast and its non-curtailable part, in kW per quarter-hour."""
    total = np.zeros(n_qh)
    fixed = np.zeros(n_qh)
    for a in member.assets:
        if isinstance(a, Pv):
            f = np.asarray(a.forecast_w, dtype=float) / 1000.0
            total += f
            if not a.curtailable:
                fixed += f
    return total, fixed


def feed_in_effective(prices: Prices) -> FloatArray:
    """The feed-in price the LP works with: ``min(feed_in, import)`` per quarter-hour, EUR/kWh.

    One meter cannot import and export in the same quarter-hour. If exporting paid more than
    importing costs, a linear program would do both at once without bound; capping the feed-in
    price at the import price removes that incentive without a binary variable. The plan is
    priced with the same figure, so its cost is the one the LP optimised.
    """
    imp = np.asarray(prices.import_eur_per_kwh, dtype=float)
    out: FloatArray = np.minimum(np.asarray(prices.feed_in_eur_per_kwh, dtype=float), imp)
    return out
