"""One round's dispatch problem from the site file, a snapshot and the store's recent readings.

Where the inputs come from:

* load: the member's BDEW profile scaled to its annual consumption, corrected by the ratio of
  its recent consumption to the same profile (``history_qh`` quarter-hours before the horizon,
  :func:`vpp.forecast.history_factor`). The consumption is rebuilt from stored raw readings:
  meter ``power_w`` (+ import) plus PV ``power_w`` minus battery ``battery_power_w``
  (+ charging) minus EV charger and storage heater ``load_power_w``; a quarter-hour with any
  part missing is not used.
* PV: pvlib clear sky at the site (30° south by default) × rated power, scaled by the ratio of
  the power measured in the snapshot to the clear-sky power of the current quarter-hour
  (:func:`vpp.forecast.measured_ratio`: kept from the last daylight reading at night, and not
  renewed while the plan curtails the asset, because a limited inverter says nothing about
  the sky).
* battery: state of charge from channel ``soc_pct`` of the snapshot.
* EV / storage heater: the session (arrival → departure, window start → end, local times of
  the site's zone, :mod:`vpp.dispatch.sessions`) in progress or the next one inside the
  horizon; the energy still needed is the configured need minus what the device drew in this
  session (its ``session_energy_wh``, else the stored ``load_power_w``). A device reporting
  ``operating_state`` 0 (no car yet) is planned from the next quarter-hour.
* prices: the community's tariffs (:func:`vpp.dispatch.prices.tariff_prices`); feeder limits
  of the community.

A device that is unavailable in the snapshot does not stop the plan: PV is planned as a
non-curtailable forecast (its output still counts) and gets no command; a battery, EV or
storage heater is left out for this round. Each such decision is a note.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from kernel.errors import ConfigError
from kernel.quarterhours import QH_S, qh_index
from scheduler.dispatch.history import QhMeans
from scheduler.dispatch.profiles import Profiles
from scheduler.snapshot import Snapshot
from store import Store
from vpp.dispatch import (
    Asset,
    Battery,
    DispatchProblem,
    EvCharger,
    InvalidDispatchInput,
    Member,
    Plan,
    Pv,
    StorageHeater,
)
from vpp.dispatch.commands import curtailing
from vpp.dispatch.prices import tariff_prices
from vpp.dispatch.sessions import Session, session, within_horizon
from vpp.forecast import LoadProfile, PvSite, clear_sky_power_w, history_factor, measured_ratio

if TYPE_CHECKING:
    from scheduler.site import MemberConfig, Site

#: Channel of an EV charger's or storage heater's power (templates ``ev_charger``,
#: ``storage_heater``); ``operating_state`` 0 there means no car / outside the window.
LOAD_POWER = "load_power_w"
NOBODY_THERE = 0.0
_QH_H = QH_S / 3600.0


@dataclass(frozen=True)
class RoundInputs:
    """A problem and what the round decided about the devices while building it.

    ``controllable``: (member id, asset id) pairs that may be commanded; ``notes``: devices left
    out or planned without control, and why.
    """

    problem: DispatchProblem
    controllable: frozenset[tuple[str, str]]
    notes: tuple[str, ...]


@dataclass
class _Decisions:
    notes: list[str] = field(default_factory=list)
    controllable: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class _Horizon:
    snapshot: Snapshot
    start: datetime
    n: int
    unit_pv: npt.NDArray[np.float64]  # clear-sky W per W of rating, per quarter-hour
    plan: Plan | None  # the plan in force (does it curtail a PV system now?)


class ProblemBuilder:
    """Builds each round's problem of one community; keeps the reading history and each PV
    system's measured/clear-sky ratio between rounds."""

    def __init__(self, community_id: str, store: Store, tz: ZoneInfo, history_qh: int) -> None:
        self._community_id = community_id
        self._tz = tz
        self._history_qh = history_qh
        self.history = QhMeans(store, keep_qh=max(history_qh, 2 * 96))
        self._pv_ratio: dict[str, float] = {}

    async def build(
        self, site: Site, snapshot: Snapshot, start: datetime, plan: Plan | None
    ) -> RoundInputs:
        """The problem for ``site.dispatch.horizon_qh`` quarter-hours from ``start`` (UTC)."""
        community = site.community(self._community_id)
        n = site.dispatch.horizon_qh
        members = [
            site.member(cm.member)
            for cm in community.members
            if (cm.joined is None or cm.joined <= start) and (cm.left is None or start < cm.left)
        ]
        names = set(community.tariffs)
        tariffs = [t.tariff() for t in site.tariffs if t.name in names]
        try:
            prices = tariff_prices(tariffs, start, n)
        except InvalidDispatchInput as exc:
            field_ = f"communities[{self._community_id}].tariffs"
            raise ConfigError(field_, exc.reason) from exc
        profiles = Profiles(self._tz, site.site.state, start, n, self._history_qh)
        pv_site = PvSite(site.site.latitude, site.site.longitude, 1000.0)
        needed = [LoadProfile(p) for p in sorted({m.load_profile for m in members})]

        def curves() -> npt.NDArray[np.float64]:  # pandas/pvlib work: off the event loop
            profiles.warm(needed)
            return np.asarray(clear_sky_power_w(pv_site, start, n), dtype=float) / 1000.0

        horizon = _Horizon(snapshot, start, n, await asyncio.to_thread(curves), plan)
        decisions = _Decisions()
        built = []
        for mc in members:
            load = await self._load_w(mc, profiles, start)
            assets = await self._assets(mc, horizon, decisions)
            built.append(Member(mc.id, tuple(float(v) for v in load), tuple(assets)))
        problem = DispatchProblem(
            community_id=self._community_id,
            start=start,
            n_qh=n,
            members=tuple(built),
            prices=prices,
            feeder_import_limit_w=community.feeder_import_limit_w,
            feeder_export_limit_w=community.feeder_export_limit_w,
        )
        return RoundInputs(problem, frozenset(decisions.controllable), tuple(decisions.notes))

    async def _load_w(
        self, mc: MemberConfig, profiles: Profiles, start: datetime
    ) -> npt.NDArray[np.float64]:
        """The member's load forecast (W per quarter-hour): profile × annual kWh × the
        correction by its recent consumption."""
        profile = LoadProfile(mc.load_profile)
        base = profiles.horizon(profile) * mc.annual_kwh
        if self._history_qh == 0:
            return base
        first, end = qh_index(start) - self._history_qh, qh_index(start)
        consumption = await self.history.series(mc.meter, "power_w", first, end)
        parts: list[tuple[str, str, float]] = [(p.device, "power_w", 1.0) for p in mc.pv]
        if mc.battery is not None:
            parts.append((mc.battery.device, "battery_power_w", -1.0))
        for load in (mc.ev, mc.storage_heater):
            if load is not None:
                parts.append((load.device, LOAD_POWER, -1.0))
        for device, channel, sign in parts:
            consumption = consumption + sign * await self.history.series(
                device, channel, first, end
            )
        past = profiles.history(profile) * mc.annual_kwh
        factor = history_factor(np.clip(consumption, 0.0, None).tolist(), past.tolist())
        return base * factor

    async def _assets(self, mc: MemberConfig, h: _Horizon, d: _Decisions) -> list[Asset]:
        assets: list[Asset] = [self._pv(mc, i, h, d) for i in range(len(mc.pv))]
        battery = _battery(mc, h.snapshot, d)
        if battery is not None:
            assets.append(battery)
        ev = await self._ev(mc, h, d)
        if ev is not None:
            assets.append(ev)
        heater = await self._heater(mc, h, d)
        if heater is not None:
            assets.append(heater)
        return assets

    def _pv(self, mc: MemberConfig, i: int, h: _Horizon, d: _Decisions) -> Pv:
        pv = mc.pv[i]
        available = h.snapshot.available(pv.device)
        measured = h.snapshot.value(pv.device, "power_w")
        ratio = measured_ratio(
            [np.nan if measured is None else measured],
            [float(h.unit_pv[0]) * pv.rated_power_w],
            previous=self._pv_ratio.get(pv.device, 1.0),
            curtailed=curtailing(h.plan, pv.device, h.start),
        )
        self._pv_ratio[pv.device] = ratio
        forecast = tuple(float(v) for v in h.unit_pv * pv.rated_power_w * ratio)
        if not available:
            d.notes.append(
                f"PV {pv.device} of {mc.id} unavailable: planned as forecast only, not curtailed"
            )
        elif pv.curtailable:
            d.controllable.add((mc.id, pv.device))
        return Pv(pv.device, forecast, pv.rated_power_w, pv.curtailable and available)

    async def _session_need(
        self, device: str, times: tuple[time, time], configured_wh: float, h: _Horizon
    ) -> tuple[Session, float] | None:
        """The session of an EV charger or storage heater in the horizon and its need (Wh).

        A device that says nobody is there (``operating_state`` 0: no car yet, window not open
        on the device) while the configured session runs is planned from the next
        quarter-hour. In a running session the need is the configured one minus what the device
        drew: its ``session_energy_wh``, else the stored ``load_power_w`` since the start.
        """
        found = session(h.start, h.n, *times, self._tz)
        if found is None:
            return None
        if found.from_qh > 0:
            return found, configured_wh
        if h.snapshot.value(device, "operating_state") == NOBODY_THERE:
            if found.to_qh <= 1:
                return None
            return replace(found, from_qh=1), configured_wh
        drawn = h.snapshot.value(device, "session_energy_wh")
        if drawn is None:
            first, end = qh_index(found.begins), qh_index(h.start)
            means = await self.history.series(device, LOAD_POWER, first, end)
            drawn = float(np.nansum(np.clip(means, 0.0, None))) * _QH_H
        return found, max(0.0, configured_wh - drawn)

    async def _ev(self, mc: MemberConfig, h: _Horizon, d: _Decisions) -> EvCharger | None:
        cfg = mc.ev
        if cfg is None:
            return None
        if not h.snapshot.available(cfg.device):
            d.notes.append(f"EV charger {cfg.device} of {mc.id} unavailable: left out")
            return None
        times = (cfg.arrival, cfg.departure)
        found = await self._session_need(cfg.device, times, float(cfg.energy_needed_wh), h)
        if found is None:
            return None
        s, need = found
        d.controllable.add((mc.id, cfg.device))
        return EvCharger(
            cfg.device,
            max_power_w=float(cfg.max_power_w),
            energy_needed_wh=within_horizon(need, float(cfg.max_power_w), s, h.n),
            departure_qh=s.to_qh,
            arrival_qh=s.from_qh,
            energy_max_wh=need,
            smart_charging=cfg.smart_charging,
        )

    async def _heater(self, mc: MemberConfig, h: _Horizon, d: _Decisions) -> StorageHeater | None:
        cfg = mc.storage_heater
        if cfg is None:
            return None
        if not h.snapshot.available(cfg.device):
            d.notes.append(f"storage heater {cfg.device} of {mc.id} unavailable: left out")
            return None
        times = (cfg.window_start, cfg.window_end)
        found = await self._session_need(cfg.device, times, float(cfg.energy_needed_wh), h)
        if found is None:
            return None
        s, need = found
        d.controllable.add((mc.id, cfg.device))
        return StorageHeater(
            cfg.device,
            max_power_w=float(cfg.max_power_w),
            energy_needed_wh=within_horizon(need, float(cfg.max_power_w), s, h.n),
            window_start_qh=s.from_qh,
            window_end_qh=s.to_qh,
            capacity_wh=need,
        )


def _battery(mc: MemberConfig, snapshot: Snapshot, d: _Decisions) -> Battery | None:
    b = mc.battery
    if b is None:
        return None
    soc_pct = snapshot.value(b.device, "soc_pct")
    if not snapshot.available(b.device) or soc_pct is None:
        d.notes.append(f"battery {b.device} of {mc.id}: no state of charge, left out")
        return None
    capacity = float(b.capacity_wh)
    soc = min(max(soc_pct, 0.0), 100.0) / 100.0 * capacity
    d.controllable.add((mc.id, b.device))
    return Battery(
        b.device,
        capacity_wh=capacity,
        soc_wh=soc,
        max_charge_w=float(b.max_charge_w),
        max_discharge_w=float(b.max_discharge_w),
        min_soc_wh=b.min_soc_pct / 100.0 * capacity,
        # A rolling horizon values energy left at its end at nothing; without a target the
        # plan empties every battery into the grid at once. Ending where it starts (soft)
        # keeps the battery for the next round.
        terminal_soc_wh=soc,
    )
