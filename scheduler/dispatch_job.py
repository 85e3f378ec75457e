"""The rolling dispatch of one community: every quarter-hour a new plan, every cycle its setpoints.

:meth:`DispatchJob.run` turns the site file, one :class:`~scheduler.snapshot.Snapshot` and the
store's recent readings into a :class:`~vpp.dispatch.DispatchProblem` for the next
``site.dispatch.horizon_qh`` quarter-hours from the current one, solves it with
:func:`~vpp.dispatch.rolling_round` in a worker thread (the HiGHS model is kept between
rounds), stores the plan (exactly one per community and interval, F10) and raises or clears the
dispatch alarms. :meth:`DispatchJob.commands` gives the plan's setpoints for the quarter-hour
in which ``now`` falls; the service's cycle decider returns them every cycle.

Where the inputs come from:

* load: the member's BDEW profile scaled to its annual consumption, corrected by the ratio of
  its recent consumption to the same profile (``history_qh`` quarter-hours before the horizon).
  The consumption is rebuilt from stored raw readings: meter ``power_w`` (+ import) plus PV
  ``power_w`` minus battery ``battery_power_w`` (+ charging) minus EV charger and storage
  heater ``load_power_w``; a quarter-hour with any part missing is not used.
* PV: pvlib clear sky at the site (30° south by default) × rated power, scaled by the ratio of
  the power measured in the snapshot to the clear-sky power of the current quarter-hour
  (kept from the last daylight reading at night, and not updated while the plan curtails the
  asset, because a limited inverter says nothing about the sky).
* battery: state of charge from channel ``soc_pct`` of the snapshot.
* EV / storage heater: the session (arrival → departure, window start → end, local times of
  the site's zone) in progress or the next one inside the horizon; the energy still needed is
  the configured need minus what the device drew in this session (its ``session_energy_wh``,
  else the stored ``load_power_w``). A device reporting ``operating_state`` 0 (no car yet) is
  planned from the next quarter-hour. A departure beyond the horizon leaves inside the
  horizon only what cannot be charged after it.
* prices: the community's tariff in force in each quarter-hour (import = supplier price +
  residual network fee; feed-in; community price; shared network fee); feeder limits of the
  community.

A device that is unavailable in the snapshot does not stop the plan: PV is planned as a
non-curtailable forecast (its output still counts) and gets no command; a battery, EV or
storage heater is left out for this round. Each such decision is a note, logged and stored
with the plan (``payload["notes"]``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays as holiday_tables
import numpy as np

from kernel.clock import Clock
from kernel.commands import Command, CommandKind
from kernel.errors import ConfigError
from kernel.quarterhours import QH, TimeGridError, floor_qh, local_to_utc, qh_index, qh_start
from scheduler.observability import Metrics
from scheduler.snapshot import Snapshot
from store import Store
from vpp.dispatch import (
    Alarm,
    Asset,
    AssetKind,
    AssetSchedule,
    Battery,
    DispatchProblem,
    EvCharger,
    Member,
    MemberFlows,
    ModelCache,
    Plan,
    PlanStatus,
    Prices,
    Pv,
    SolveOptions,
    StorageHeater,
    Timings,
    Violation,
    command_id,
    rolling_round,
)
from vpp.forecast import LoadProfile, PvSite, bdew_load_w, clear_sky_power_w
from vpp.forecast.load import history_factor

if TYPE_CHECKING:
    from scheduler.site import MemberConfig, Site, TariffConfig

log = logging.getLogger(__name__)

#: Below this clear-sky power (W) a measured/clear-sky ratio is noise (dawn, dusk, night).
MIN_CLEAR_SKY_W = 50.0
#: The measured/clear-sky ratio is kept inside these bounds (as in vpp.forecast.pv).
RATIO_BOUNDS = (0.0, 1.2)
_STATUSES = [s.value for s in PlanStatus]
#: Channel of an EV charger's or storage heater's power (templates ``ev_charger``,
#: ``storage_heater``); ``operating_state`` 0 there means no car / outside the window.
LOAD_POWER = "load_power_w"
NOBODY_THERE = 0.0


@dataclass(frozen=True)
class RoundInputs:
    """A problem and what the round decided about the devices while building it.

    ``controllable``: (member id, asset id) pairs that may be commanded; ``notes``: devices left
    out or planned without control, and why.
    """

    problem: DispatchProblem
    controllable: frozenset[tuple[str, str]]
    notes: tuple[str, ...]


class _QhMeans:
    """Quarter-hour means of stored raw readings per (device, channel), fetched incrementally.

    The first round reads the whole window asked for; later rounds read only what is new (plus
    the last quarter-hour again, for readings that were committed late). Means older than
    ``keep_qh`` quarter-hours before the newest request are dropped.
    """

    def __init__(self, store: Store, keep_qh: int) -> None:
        self._store = store
        self._keep_qh = keep_qh
        self._means: dict[tuple[str, str], dict[int, float]] = {}
        #: the quarter-hour indices [first, end) already read, per key
        self._fetched: dict[tuple[str, str], tuple[int, int]] = {}

    async def series(self, device: str, channel: str, first: int, end: int) -> np.ndarray:
        """Means for quarter-hour indices ``[first, end)``; NaN where nothing was stored."""
        key = (device, channel)
        if end <= first:
            return np.zeros(0)
        means = self._means.setdefault(key, {})
        done = self._fetched.get(key)
        if done is None or first < done[0] or done[1] < first:
            lo, covered_from, done = first, first, None
            means.clear()
        else:
            lo, covered_from = max(first, done[1] - 1), done[0]
        if lo < end:
            readings = await self._store.readings.between(
                device, channel, qh_start(lo), qh_start(end)
            )
            buckets: dict[int, list[float]] = {}
            for r in readings:
                if r.value is not None and r.available:
                    buckets.setdefault(qh_index(r.ts), []).append(r.value)
            for i in range(lo, end):
                means.pop(i, None)
            means.update({i: sum(v) / len(v) for i, v in buckets.items()})
        keep_from = min(first, end - self._keep_qh)
        for stale in [i for i in means if i < keep_from]:
            del means[stale]
        newest = end if done is None else max(end, done[1])
        self._fetched[key] = (max(covered_from, keep_from), newest)
        return np.array([means.get(i, math.nan) for i in range(first, end)], dtype=float)


def _local_instant(day: date, at: wall_time, tz: ZoneInfo) -> datetime:
    """A local wall time as UTC; a time in the spring-forward gap becomes the instant after it,
    an ambiguous one the first occurrence (a charging window is not worth refusing a day)."""
    wall = datetime.combine(day, at)
    try:
        return local_to_utc(wall, tz)
    except TimeGridError:
        return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


@dataclass(frozen=True)
class _Session:
    """A window of an EV or storage heater relative to the horizon, in quarter-hour indices."""

    from_qh: int
    to_qh: int
    begins: datetime


def _session(
    start: datetime, n_qh: int, begin: wall_time, end: wall_time, tz: ZoneInfo
) -> _Session | None:
    """The session in progress at ``start`` or the next one that begins inside the horizon.

    Arrival rounds up to the next quarter-hour, departure down (the car must be full by then).
    """
    horizon_end = start + n_qh * QH
    today = start.astimezone(tz).date()
    for offset in range(-1, 3):
        day = today + timedelta(days=offset)
        begins = _local_instant(day, begin, tz)
        ends = _local_instant(day + timedelta(days=0 if end > begin else 1), end, tz)
        if ends <= start:
            continue
        if begins >= horizon_end:
            return None
        from_qh = max(0, -((start - begins) // QH))
        to_qh = (ends - start) // QH
        if to_qh > from_qh:
            return _Session(from_qh, to_qh, begins)
    return None


def _tariff_prices(
    community_id: str, tariffs: Sequence[TariffConfig], start: datetime, n_qh: int
) -> Prices:
    """Prices per quarter-hour from the tariff in force (the newest ``valid_from`` ≤ the qh)."""
    ordered = sorted(tariffs, key=lambda t: t.valid_from)
    imp: list[float] = []
    feed: list[float] = []
    comm: list[float] = []
    fee: list[float] = []
    for k in range(n_qh):
        t = start + k * QH
        in_force = [x for x in ordered if x.valid_from <= t]
        if not in_force:
            raise ConfigError(
                f"communities[{community_id}].tariffs",
                f"no tariff of the community is in force at {t.isoformat()} "
                f"(earliest valid_from {ordered[0].valid_from.isoformat()})"
                if ordered
                else "the community has no tariff",
            )
        x = in_force[-1]
        imp.append(float(x.supplier_price_eur_per_kwh + x.network_fee_residual_eur_per_kwh))
        feed.append(float(x.feed_in_price_eur_per_kwh))
        comm.append(float(x.community_price_eur_per_kwh))
        fee.append(float(x.network_fee_shared_eur_per_kwh))
    return Prices(tuple(imp), tuple(feed), tuple(comm), tuple(fee))


def _pv_limit_pct(s: AssetSchedule, k: int) -> float:
    rated = s.rated_power_w or 0.0
    limit = s.limit_w[k] if s.limit_w is not None else rated
    return 100.0 if rated <= 0 else round(min(100.0, max(0.0, 100.0 * limit / rated)), 2)


_KIND = {
    AssetKind.PV: CommandKind.POWER_LIMIT_PCT,
    AssetKind.BATTERY: CommandKind.BATTERY_POWER_W,
    AssetKind.EV: CommandKind.LOAD_POWER_W,
    AssetKind.STORAGE_HEATER: CommandKind.LOAD_POWER_W,
}


# --- the plan as stored (JSON) ----------------------------------------------------------------


def _tenths(values: Sequence[float]) -> list[float]:
    # W and Wh to a tenth: what a setpoint carries, and half the JSON of full floats
    # (a 60-member, 96-qh plan is ~250 kB unrounded, and the table keeps every plan)
    return [round(v, 1) + 0.0 for v in values]


def plan_payload(
    plan: Plan, controllable: frozenset[tuple[str, str]], notes: Sequence[str]
) -> dict[str, Any]:
    """The plan as a JSON document for ``store.plans`` (read back by :func:`plan_from_payload`).

    Series are rounded to 0.1 W / 0.1 Wh; the stored plan is the plan every process executes.
    """
    return {
        "plan_id": plan.plan_id,
        "community_id": plan.community_id,
        "start": plan.start.isoformat(),
        "n_qh": plan.n_qh,
        "status": plan.status.value,
        "objective_eur": plan.objective_eur,
        "solver_objective_eur": plan.solver_objective_eur,
        "dual_bound_eur": plan.dual_bound_eur,
        "assets": [
            {
                "member_id": s.member_id,
                "asset_id": s.asset_id,
                "kind": s.kind.value,
                "power_w": _tenths(s.power_w),
                "soc_wh": None if s.soc_wh is None else _tenths(s.soc_wh),
                "rated_power_w": s.rated_power_w,
                "nominal_power_w": s.nominal_power_w,
                "limit_w": None if s.limit_w is None else _tenths(s.limit_w),
            }
            for s in plan.assets
        ],
        "members": [
            {
                "member_id": m.member_id,
                "import_wh": _tenths(m.import_wh),
                "export_wh": _tenths(m.export_wh),
            }
            for m in plan.members
        ],
        "shared_wh": _tenths(plan.shared_wh),
        "violations": [
            {
                "constraint": v.constraint,
                "amount_wh": v.amount_wh,
                "member_id": v.member_id,
                "asset_id": v.asset_id,
                "qh": v.qh,
            }
            for v in plan.violations
        ],
        "alarms": [{"code": a.code, "message": a.message} for a in plan.alarms],
        "timings": {
            "build_s": plan.timings.build_s,
            "solve_s": plan.timings.solve_s,
            "readback_s": plan.timings.readback_s,
        },
        "controllable": sorted([m, a] for m, a in controllable),
        "notes": list(notes),
    }


def _floats(values: Sequence[Any] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def plan_from_payload(
    payload: dict[str, Any],
) -> tuple[Plan, frozenset[tuple[str, str]], tuple[str, ...]]:
    """The plan, its controllable assets and its notes from a stored document."""
    assets = tuple(
        AssetSchedule(
            member_id=a["member_id"],
            asset_id=a["asset_id"],
            kind=AssetKind(a["kind"]),
            power_w=tuple(float(v) for v in a["power_w"]),
            soc_wh=_floats(a["soc_wh"]),
            rated_power_w=a["rated_power_w"],
            nominal_power_w=a["nominal_power_w"],
            limit_w=_floats(a["limit_w"]),
        )
        for a in payload["assets"]
    )
    t = payload["timings"]
    plan = Plan(
        plan_id=payload["plan_id"],
        community_id=payload["community_id"],
        start=datetime.fromisoformat(payload["start"]).astimezone(UTC),
        n_qh=int(payload["n_qh"]),
        status=PlanStatus(payload["status"]),
        objective_eur=float(payload["objective_eur"]),
        solver_objective_eur=payload["solver_objective_eur"],
        dual_bound_eur=payload["dual_bound_eur"],
        assets=assets,
        members=tuple(
            MemberFlows(
                m["member_id"],
                tuple(float(v) for v in m["import_wh"]),
                tuple(float(v) for v in m["export_wh"]),
            )
            for m in payload["members"]
        ),
        shared_wh=tuple(float(v) for v in payload["shared_wh"]),
        violations=tuple(Violation(**v) for v in payload["violations"]),
        alarms=tuple(Alarm(**a) for a in payload["alarms"]),
        timings=Timings(t["build_s"], t["solve_s"], t["readback_s"]),
    )
    controllable = frozenset((m, a) for m, a in payload.get("controllable", []))
    return plan, controllable, tuple(payload.get("notes", []))


# --- the job ----------------------------------------------------------------------------------


class DispatchJob:
    """The rolling dispatch of one community (holds the solver model and the current plan).

    ``solve_options`` tune the solver (engine, hard feeder limit, ...); the time limit is always
    ``site.dispatch.solve_time_limit_s``. ``history_qh``: how far back the load correction
    looks. ``timer`` measures the solve for the metrics (real seconds, whatever the clock).
    """

    def __init__(
        self,
        site: Site,
        community_id: str,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        *,
        solve_options: SolveOptions | None = None,
        history_qh: int = 96,
        created_by: str = "dispatch",
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        try:
            site.community(community_id)
        except KeyError as exc:
            raise ConfigError(
                "community_id", f"no community {community_id!r} in the site file"
            ) from exc
        if history_qh < 0:
            raise ConfigError("history_qh", f"must be ≥ 0, got {history_qh}")
        self.site = site
        self.community_id = community_id
        self._store = store
        self._clock = clock
        self._metrics = metrics
        options = solve_options or SolveOptions()
        limit_s = site.dispatch.solve_time_limit_s
        self._options = replace(
            options,
            highs=replace(options.highs, time_limit_s=limit_s),
            decomposition=replace(options.decomposition, time_limit_s=limit_s),
            timer=timer,
        )
        self._history_qh = history_qh
        self._created_by = created_by
        self._timer = timer
        self._tz = ZoneInfo(site.site.timezone)
        self._cache = ModelCache()
        self._history = _QhMeans(store, keep_qh=max(history_qh, 2 * 96))
        self._pv_ratio: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.plan: Plan | None = None
        self.controllable: frozenset[tuple[str, str]] = frozenset()
        self.notes: tuple[str, ...] = ()

    @property
    def model_cache(self) -> ModelCache:
        """The solver model kept between rounds (counts warm and cold rounds)."""
        return self._cache

    @property
    def name(self) -> str:
        """The decider's name in the cycle."""
        return f"dispatch:{self.community_id}"

    # -- the quarter-hour round ----------------------------------------------------------------

    async def run(self, snapshot: Snapshot) -> Plan:
        """Plan the horizon from the current quarter-hour; store it; alarms; return the plan.

        If a plan for this community and quarter-hour is stored already (another process won,
        or this one restarted), that plan is kept and returned without a solve.
        """
        async with self._lock:
            now = self._clock.now()
            start = floor_qh(now)
            stored = await self._store.plans.get(self.community_id, start)
            if stored is not None:
                return self._adopt(stored.payload, "stored before")
            if self._cache.last_valid_plan is None:
                await self._seed_last_plan(start)
            inputs = await self.build_problem(snapshot, start)
            for note in inputs.notes:
                log.warning("dispatch %s: %s", self.community_id, note)
            t0 = self._timer()
            plan = await asyncio.to_thread(
                rolling_round, inputs.problem, self._cache, self._options
            )
            elapsed = self._timer() - t0
            self._metrics.solve_seconds.observe(elapsed)
            payload = plan_payload(plan, inputs.controllable, inputs.notes)
            result = await self._store.plans.insert(
                self.community_id, start, payload, created_by=self._created_by, now=now
            )
            if not result.won:
                return self._adopt(result.plan.payload, "stored by another process")
            # the stored (rounded) plan is the one executed, by this process and any other
            plan, self.controllable, self.notes = plan_from_payload(payload)
            self.plan = plan
            self._metrics.set_plan_status(plan.status.value, _STATUSES)
            log.info(
                "dispatch %s: plan %s %s, %.2f € over %d qh, solved in %.2f s",
                self.community_id,
                plan.plan_id,
                plan.status.value,
                plan.objective_eur,
                plan.n_qh,
                elapsed,
            )
            await self._report_alarms(plan, now)
            return plan

    def _adopt(self, payload: dict[str, Any], why: str) -> Plan:
        plan, controllable, notes = plan_from_payload(payload)
        log.info("dispatch %s: keeping plan %s (%s)", self.community_id, plan.plan_id, why)
        self.plan, self.controllable, self.notes = plan, controllable, notes
        if not plan.status.is_fallback:
            self._cache.last_valid_plan = plan
        self._metrics.set_plan_status(plan.status.value, _STATUSES)
        return plan

    async def _seed_last_plan(self, start: datetime) -> None:
        """After a restart: the newest stored solver plan is the ladder's "last valid plan"."""
        stored = await self._store.plans.latest(self.community_id, start)
        if stored is None:
            return
        plan, _, _ = plan_from_payload(stored.payload)
        if not plan.status.is_fallback:
            self._cache.last_valid_plan = plan

    async def _report_alarms(self, plan: Plan, now: datetime) -> None:
        alarms = self._store.alarms
        fallback_key = f"dispatch:{self.community_id}:fallback"
        violation_key = f"dispatch:{self.community_id}:violations"
        details = {"plan_id": plan.plan_id, "alarms": [a.message for a in plan.alarms]}
        if plan.status.is_fallback:
            causes = "; ".join(a.message for a in plan.alarms) or plan.status.value
            await alarms.raise_alarm(
                fallback_key,
                source=self.name,
                kind="dispatch_fallback",
                severity="critical"
                if plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT
                else "warning",
                message=f"plan {plan.plan_id} is a fallback ({plan.status.value}): {causes}",
                now=now,
                details=details,
            )
        else:
            await alarms.clear_alarm(
                fallback_key, message=f"plan {plan.plan_id} solved ({plan.status.value})", now=now
            )
        if plan.violations:
            missed = ", ".join(
                f"{v.constraint} {v.amount_wh:.0f} Wh"
                + (f" ({v.member_id}/{v.asset_id})" if v.asset_id else "")
                + (f" at qh {v.qh}" if v.qh is not None else "")
                for v in plan.violations[:10]
            )
            await alarms.raise_alarm(
                violation_key,
                source=self.name,
                kind="dispatch_violations",
                severity="warning",
                message=f"plan {plan.plan_id}: {len(plan.violations)} soft limit(s) missed: "
                f"{missed}",
                now=now,
                details={
                    "plan_id": plan.plan_id,
                    "violations": [
                        {"constraint": v.constraint, "amount_wh": v.amount_wh, "asset": v.asset_id}
                        for v in plan.violations
                    ],
                },
            )
        else:
            await alarms.clear_alarm(
                violation_key, message=f"plan {plan.plan_id} keeps every limit", now=now
            )

    # -- building the problem ------------------------------------------------------------------

    async def build_problem(self, snapshot: Snapshot, start: datetime) -> RoundInputs:
        """The dispatch problem for the horizon from ``start`` (a quarter-hour start, UTC)."""
        site = self.site
        community = site.community(self.community_id)
        n = site.dispatch.horizon_qh
        members = [
            site.member(cm.member)
            for cm in community.members
            if (cm.joined is None or cm.joined <= start) and (cm.left is None or start < cm.left)
        ]
        names = set(community.tariffs)
        tariffs = [t for t in site.tariffs if t.name in names]
        prices = _tariff_prices(self.community_id, tariffs, start, n)
        profiles = _Profiles(self._tz, site.site.state, start, n, self._history_qh)
        pv_site = PvSite(site.site.latitude, site.site.longitude, 1000.0)
        needed = [LoadProfile(p) for p in sorted({m.load_profile for m in members})]

        def curves() -> np.ndarray:  # pandas/pvlib work: off the event loop
            profiles.warm(needed)
            return np.asarray(clear_sky_power_w(pv_site, start, n), dtype=float) / 1000.0

        unit_pv = await asyncio.to_thread(curves)
        notes: list[str] = []
        controllable: set[tuple[str, str]] = set()
        built = []
        for mc in members:
            load = await self._load_w(mc, profiles, start)
            assets = await self._assets(mc, snapshot, start, n, unit_pv, notes, controllable)
            built.append(Member(mc.id, tuple(float(v) for v in load), tuple(assets)))
        problem = DispatchProblem(
            community_id=self.community_id,
            start=start,
            n_qh=n,
            members=tuple(built),
            prices=prices,
            feeder_import_limit_w=community.feeder_import_limit_w,
            feeder_export_limit_w=community.feeder_export_limit_w,
        )
        return RoundInputs(problem, frozenset(controllable), tuple(notes))

    async def _load_w(self, mc: MemberConfig, profiles: _Profiles, start: datetime) -> np.ndarray:
        profile = LoadProfile(mc.load_profile)
        base = profiles.horizon(profile) * mc.annual_kwh
        if self._history_qh == 0:
            return base
        first = qh_index(start) - self._history_qh
        end = qh_index(start)
        consumption = await self._history.series(mc.meter, "power_w", first, end)
        parts: list[tuple[str, str, float]] = [(p.device, "power_w", 1.0) for p in mc.pv]
        if mc.battery is not None:
            parts.append((mc.battery.device, "battery_power_w", -1.0))
        if mc.ev is not None:
            parts.append((mc.ev.device, LOAD_POWER, -1.0))
        if mc.storage_heater is not None:
            parts.append((mc.storage_heater.device, LOAD_POWER, -1.0))
        for device, channel, sign in parts:
            consumption = consumption + sign * await self._history.series(
                device, channel, first, end
            )
        past = profiles.history(profile) * mc.annual_kwh
        factor = history_factor(np.clip(consumption, 0.0, None).tolist(), past.tolist())
        return base * factor

    async def _assets(
        self,
        mc: MemberConfig,
        snapshot: Snapshot,
        start: datetime,
        n: int,
        unit_pv: np.ndarray,
        notes: list[str],
        controllable: set[tuple[str, str]],
    ) -> list[Asset]:
        assets: list[Asset] = []
        for pv in mc.pv:
            available = snapshot.available(pv.device)
            ratio = self._update_pv_ratio(pv.device, pv.rated_power_w, snapshot, unit_pv, start)
            forecast = tuple(float(v) for v in unit_pv * pv.rated_power_w * ratio)
            curtailable = pv.curtailable and available
            if not available:
                notes.append(
                    f"PV {pv.device} of {mc.id} unavailable: planned as forecast only, "
                    "not curtailed"
                )
            elif pv.curtailable:
                controllable.add((mc.id, pv.device))
            assets.append(Pv(pv.device, forecast, pv.rated_power_w, curtailable))
        if mc.battery is not None:
            b = mc.battery
            soc_pct = snapshot.value(b.device, "soc_pct")
            if not snapshot.available(b.device) or soc_pct is None:
                notes.append(f"battery {b.device} of {mc.id}: no state of charge, left out")
            else:
                capacity = float(b.capacity_wh)
                soc = min(max(soc_pct, 0.0), 100.0) / 100.0 * capacity
                assets.append(
                    Battery(
                        b.device,
                        capacity_wh=capacity,
                        soc_wh=soc,
                        max_charge_w=float(b.max_charge_w),
                        max_discharge_w=float(b.max_discharge_w),
                        min_soc_wh=b.min_soc_pct / 100.0 * capacity,
                        # A rolling horizon values energy left at its end at nothing; without a
                        # target the plan empties every battery into the grid at once. Ending
                        # where it starts (soft) keeps the battery for the next round.
                        terminal_soc_wh=soc,
                    )
                )
                controllable.add((mc.id, b.device))
        if mc.ev is not None:
            ev = await self._ev(mc, snapshot, start, n, notes)
            if ev is not None:
                assets.append(ev)
                controllable.add((mc.id, ev.asset_id))
        if mc.storage_heater is not None:
            heater = await self._heater(mc, snapshot, start, n, notes)
            if heater is not None:
                assets.append(heater)
                controllable.add((mc.id, heater.asset_id))
        return assets

    def _update_pv_ratio(
        self,
        device: str,
        rated_w: float,
        snapshot: Snapshot,
        unit_pv: np.ndarray,
        start: datetime,
    ) -> float:
        clear_now = float(unit_pv[0]) * rated_w
        measured = snapshot.value(device, "power_w")
        if (
            measured is not None
            and clear_now >= MIN_CLEAR_SKY_W
            and not self._curtailing(device, start)
        ):
            self._pv_ratio[device] = float(np.clip(measured / clear_now, *RATIO_BOUNDS))
        return self._pv_ratio.get(device, 1.0)

    def _curtailing(self, device: str, at: datetime) -> bool:
        """True if the current plan limits ``device`` below its rating in the qh of ``at``."""
        plan = self.plan
        if plan is None:
            return False
        k = (floor_qh(at) - plan.start) // QH
        for s in plan.assets:
            if s.asset_id == device and s.kind is AssetKind.PV and 0 <= k < plan.n_qh:
                return _pv_limit_pct(s, k) < 99.5
        return False

    async def _session_need(
        self,
        device: str,
        times: tuple[wall_time, wall_time],
        configured_wh: float,
        snapshot: Snapshot,
        start: datetime,
        n: int,
    ) -> tuple[_Session, float] | None:
        """The session of an EV charger or storage heater in the horizon and its need (Wh).

        A device that says nobody is there (``operating_state`` 0: no car yet, window not open
        on the device) while the configured session runs is planned from the next
        quarter-hour. In a running session the need is the configured one minus what the device
        drew: its ``session_energy_wh``, else the stored ``load_power_w`` since the start.
        """
        session = _session(start, n, *times, self._tz)
        if session is None:
            return None
        if session.from_qh > 0:
            return session, configured_wh
        if snapshot.value(device, "operating_state") == NOBODY_THERE:
            if session.to_qh <= 1:
                return None
            return replace(session, from_qh=1), configured_wh
        drawn = snapshot.value(device, "session_energy_wh")
        if drawn is None:
            first, end = qh_index(session.begins), qh_index(start)
            means = await self._history.series(device, LOAD_POWER, first, end)
            drawn = float(np.nansum(np.clip(means, 0.0, None))) * 0.25
        return session, max(0.0, configured_wh - drawn)

    async def _ev(
        self, mc: MemberConfig, snapshot: Snapshot, start: datetime, n: int, notes: list[str]
    ) -> EvCharger | None:
        cfg = mc.ev
        assert cfg is not None
        if not snapshot.available(cfg.device):
            notes.append(f"EV charger {cfg.device} of {mc.id} unavailable: left out")
            return None
        times = (cfg.arrival, cfg.departure)
        found = await self._session_need(
            cfg.device, times, float(cfg.energy_needed_wh), snapshot, start, n
        )
        if found is None:
            return None
        session, need = found
        return EvCharger(
            cfg.device,
            max_power_w=float(cfg.max_power_w),
            energy_needed_wh=_within_horizon(need, float(cfg.max_power_w), session, n),
            departure_qh=session.to_qh,
            arrival_qh=session.from_qh,
            energy_max_wh=need,
            smart_charging=cfg.smart_charging,
        )

    async def _heater(
        self, mc: MemberConfig, snapshot: Snapshot, start: datetime, n: int, notes: list[str]
    ) -> StorageHeater | None:
        cfg = mc.storage_heater
        assert cfg is not None
        if not snapshot.available(cfg.device):
            notes.append(f"storage heater {cfg.device} of {mc.id} unavailable: left out")
            return None
        times = (cfg.window_start, cfg.window_end)
        found = await self._session_need(
            cfg.device, times, float(cfg.energy_needed_wh), snapshot, start, n
        )
        if found is None:
            return None
        session, need = found
        return StorageHeater(
            cfg.device,
            max_power_w=float(cfg.max_power_w),
            energy_needed_wh=_within_horizon(need, float(cfg.max_power_w), session, n),
            window_start_qh=session.from_qh,
            window_end_qh=session.to_qh,
            capacity_wh=need,
        )

    # -- the cycle's setpoints -----------------------------------------------------------------

    def commands(self, now: datetime) -> list[Command]:
        """Setpoints of the current plan for the quarter-hour of ``now``.

        Ids are deterministic (plan, asset, quarter-hour), so the same setpoint asked for in
        every cycle of a quarter-hour is written once; each expires at the quarter-hour's end
        and carries ``site.dispatch.revert_s``. Assets the round could not control (silent
        devices, non-curtailable PV) get none.
        """
        plan = self.plan
        if plan is None:
            return []
        qh = floor_qh(now)
        k = (qh - plan.start) // QH
        if not 0 <= k < plan.n_qh:
            return []
        out: list[Command] = []
        for s in plan.assets:
            kind = _KIND.get(s.kind)
            if kind is None or (s.member_id, s.asset_id) not in self.controllable:
                continue
            value = _pv_limit_pct(s, k) if s.kind is AssetKind.PV else round(s.power_w[k], 1)
            out.append(
                Command(
                    command_id=command_id(plan.plan_id, s.member_id, s.asset_id, qh),
                    target=s.asset_id,
                    kind=kind,
                    value=value,
                    expires_at=qh + QH,
                    source=self.name,
                    revert_s=self.site.dispatch.revert_s,
                )
            )
        return out

    def decide(self, snapshot: Snapshot) -> list[Command]:
        """The cycle's decider: the current plan's setpoints at the snapshot's instant."""
        return self.commands(snapshot.at)


def _within_horizon(need_wh: float, max_power_w: float, session: _Session, n: int) -> float:
    """What must be delivered inside the horizon when the session ends after it."""
    after_qh = max(0, session.to_qh - max(n, session.from_qh))
    return max(0.0, need_wh - max_power_w * after_qh * 0.25)


@functools.lru_cache(maxsize=32)
def _year_per_kwh(
    profile: LoadProfile, year: int, zone: str, holidays: tuple[date, ...]
) -> tuple[datetime, np.ndarray]:
    """A whole local year of ``profile`` per 1 kWh a year (W per quarter-hour), from the
    year's first local midnight (UTC). Computed once per process: demandlib builds a pandas
    series per call (0.05–0.25 s), too slow for every round on the event loop. A slice of
    the year equals the profile computed for the slice alone (tested)."""
    tz = ZoneInfo(zone)
    first = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    n = int((end - first) / QH)
    series = np.asarray(bdew_load_w(profile, 1000.0, first, n, zone=zone, holidays=holidays))
    series = series / 1000.0
    series.setflags(write=False)
    return first, series


def profile_window(
    profile: LoadProfile, start: datetime, n: int, zone: str, holidays: tuple[date, ...]
) -> np.ndarray:
    """``n`` quarter-hours of ``profile`` per 1 kWh a year from ``start`` (UTC), cut from the
    cached local years it spans."""
    tz = ZoneInfo(zone)
    end = start + n * QH
    parts: list[np.ndarray] = []
    for year in range(start.astimezone(tz).year, (end - QH).astimezone(tz).year + 1):
        first, series = _year_per_kwh(profile, year, zone, holidays)
        lo = max(0, int((start - first) / QH))
        hi = min(len(series), int((end - first) / QH))
        if hi > lo:
            parts.append(series[lo:hi])
    window = np.concatenate(parts) if parts else np.zeros(0)
    if len(window) != n:
        raise ValueError(f"profile window of {len(window)} quarter-hours, wanted {n}")
    return window


class _Profiles:
    """BDEW profiles per 1 kWh a year for this round's horizon and history window, cut from
    whole years cached per process; :meth:`warm` computes missing years (in a worker thread)."""

    def __init__(self, tz: ZoneInfo, state: str, start: datetime, n: int, history_qh: int) -> None:
        self._zone = tz.key
        self._start = start
        self._n = n
        self._history_qh = history_qh
        first = start - history_qh * QH
        years = range(first.year - 1, (start + n * QH).year + 2)
        self._holidays = tuple(
            sorted(holiday_tables.country_holidays("DE", subdiv=state, years=years))
        )
        self._cache: dict[tuple[LoadProfile, bool], np.ndarray] = {}

    def warm(self, profiles: Sequence[LoadProfile]) -> None:
        for profile in profiles:
            self._get(profile, past=False)
            if self._history_qh:
                self._get(profile, past=True)

    def _get(self, profile: LoadProfile, past: bool) -> np.ndarray:
        key = (profile, past)
        if key not in self._cache:
            start = self._start - self._history_qh * QH if past else self._start
            n = self._history_qh if past else self._n
            self._cache[key] = profile_window(profile, start, n, self._zone, self._holidays)
        return self._cache[key]

    def horizon(self, profile: LoadProfile) -> np.ndarray:
        return self._get(profile, past=False)

    def history(self, profile: LoadProfile) -> np.ndarray:
        return self._get(profile, past=True)
