"""The world the dispatch plans for: assets, members, prices and the community.

All series are tuples with one value per quarter-hour of the horizon, in W (mean power over the
quarter-hour) or EUR/kWh. Energies are in Wh. Quarter-hour indices count from the horizon start
(index 0 = the quarter-hour that starts at ``DispatchProblem.start``); windows are half-open
``[start_qh, end_qh)``. Sign convention at the grid point: import positive.

Street lighting (or any other member whose consumption is known) is a :class:`Member` with only
``load_w`` and no assets: the lighting programs provide that series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: Length of one quarter-hour in hours: converts a mean power in kW to an energy in kWh.
QH_H = 0.25

#: §14a EnWG (BK6-22-300, Annex 1): a dimmed controllable consumer keeps at least this power.
P14A_MIN_POWER_W = 4200.0


def p14a_min_power_w(n_devices: int, simultaneity_factor: float) -> float:
    """The §14a floor for ``n_devices`` behind one energy management system, in W.

    ``P_min = 4.2 kW + (n − 1) · GZF · 4.2 kW``; GZF is the simultaneity factor of Annex 1,
    passed in because it is data (it depends on n and can change with the regulation).
    """
    if n_devices < 1:
        raise ValueError(f"n_devices must be at least 1, got {n_devices}")
    return P14A_MIN_POWER_W + (n_devices - 1) * simultaneity_factor * P14A_MIN_POWER_W


@dataclass(frozen=True)
class Pv:
    """A PV system; ``forecast_w`` is the available AC power per quarter-hour.

    ``curtailable`` PV may be limited down to 0 (commanded as a percentage of ``rated_power_w``).
    """

    asset_id: str
    forecast_w: tuple[float, ...]
    rated_power_w: float
    curtailable: bool = True


@dataclass(frozen=True)
class Battery:
    """A stationary battery. ``soc_wh`` is the measured state of charge at the horizon start.

    Charging ``p`` W for a quarter-hour stores ``p · 0.25 · charge_efficiency`` Wh; discharging
    ``p`` W removes ``p · 0.25 / discharge_efficiency`` Wh. ``terminal_soc_wh`` (optional) is a
    soft target for the end of the horizon, so the plan does not empty the battery just because
    the horizon ends.
    """

    asset_id: str
    capacity_wh: float
    soc_wh: float
    max_charge_w: float
    max_discharge_w: float
    min_soc_wh: float = 0.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    terminal_soc_wh: float | None = None


@dataclass(frozen=True)
class EvCharger:
    """A wallbox with a car that needs ``energy_needed_wh`` before ``departure_qh``.

    The car is plugged in during ``[arrival_qh, departure_qh)``; it can take up to
    ``energy_max_wh`` (default: exactly the need). §14a EnWG: unless the member agreed to smart
    charging, the plan may dim the car but not below ``min_power_w`` while it still wants energy,
    i.e. the floor is ``min(min_power_w, max_power_w)`` from arrival until the need is met at that
    floor. With ``smart_charging`` the member agreed to shifting and the floor is 0.
    """

    asset_id: str
    max_power_w: float
    energy_needed_wh: float
    departure_qh: int
    arrival_qh: int = 0
    energy_max_wh: float | None = None
    min_power_w: float = P14A_MIN_POWER_W
    smart_charging: bool = False


@dataclass(frozen=True)
class StorageHeater:
    """A night storage heater (Nachtspeicher): store ``energy_needed_wh`` inside the window.

    It may store up to ``capacity_wh`` in total during ``[window_start_qh, window_end_qh)``.
    """

    asset_id: str
    max_power_w: float
    energy_needed_wh: float
    window_start_qh: int
    window_end_qh: int
    capacity_wh: float | None = None


Asset = Pv | Battery | EvCharger | StorageHeater
DeferrableLoad = EvCharger | StorageHeater


@dataclass(frozen=True)
class Member:
    """A member with one grid connection point: a fixed load forecast and any flexible assets."""

    member_id: str
    load_w: tuple[float, ...]
    assets: tuple[Asset, ...] = ()

    @property
    def is_flexible(self) -> bool:
        """True if the member has anything but PV and fixed load (battery or deferrable load)."""
        return any(not isinstance(a, Pv) for a in self.assets)


@dataclass(frozen=True)
class Prices:
    """Prices per quarter-hour in EUR/kWh.

    ``import_`` is what a member pays for grid draw (dynamic tariffs allowed), ``feed_in`` what
    it gets for export (may be negative), ``community`` the price of shared energy between
    members, ``network_fee`` the fee on shared energy (reduced grid fees for local sharing).
    """

    import_eur_per_kwh: tuple[float, ...]
    feed_in_eur_per_kwh: tuple[float, ...]
    community_eur_per_kwh: tuple[float, ...]
    network_fee_eur_per_kwh: tuple[float, ...]


@dataclass(frozen=True)
class Weights:
    """Weights of the objective, in EUR per kWh. Documented defaults, site-configurable.

    * ``sharing``: multiplier on the value of a shared kWh (import price − fee − feed-in); 1 is
      the money the community really saves.
    * ``battery_wear_eur_per_kwh``: cost per kWh charged plus per kWh discharged.
    * ``curtailment_eur_per_kwh``: a small cost so that curtailment only happens when it pays.
    * ``unmet_energy_eur_per_kwh``: penalty per kWh an EV or a storage heater misses; high, so
      it only happens when physics forces it (slack of a soft constraint).
    * ``feeder_violation_eur_per_kwh``: penalty per kWh above the feeder limit (soft).
    * ``terminal_soc_shortfall_eur_per_kwh``: penalty per kWh a battery ends below its target.
    """

    sharing: float = 1.0
    battery_wear_eur_per_kwh: float = 0.02
    curtailment_eur_per_kwh: float = 0.001
    unmet_energy_eur_per_kwh: float = 5.0
    feeder_violation_eur_per_kwh: float = 10.0
    terminal_soc_shortfall_eur_per_kwh: float = 1.0


@dataclass(frozen=True)
class DispatchProblem:
    """One round of the dispatch: the community, its prices and limits, from ``start`` (UTC).

    ``feeder_import_limit_w`` / ``feeder_export_limit_w`` bound the community's net import and
    net export per quarter-hour (transformer or feeder); ``None`` means unlimited.
    """

    community_id: str
    start: datetime
    n_qh: int
    members: tuple[Member, ...]
    prices: Prices
    feeder_import_limit_w: float | None = None
    feeder_export_limit_w: float | None = None
    weights: Weights = field(default_factory=Weights)
