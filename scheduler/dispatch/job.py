"""The rolling dispatch of one community: every quarter-hour a new plan, every cycle its setpoints.

:meth:`DispatchJob.run` builds the problem for the next ``site.dispatch.horizon_qh``
quarter-hours from the current one (:mod:`scheduler.dispatch.problem`), solves it with
:func:`~vpp.dispatch.rolling_round` in a worker thread (the HiGHS model is kept between
rounds), stores the plan (exactly one per community and interval, F10) and raises or clears the
dispatch alarms. :meth:`DispatchJob.decide` gives the plan's setpoints for the quarter-hour of
the snapshot (:func:`vpp.dispatch.setpoints`); the service's cycle calls it every cycle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kernel.clock import Clock
from kernel.commands import Command
from kernel.errors import ConfigError
from kernel.quarterhours import floor_qh
from scheduler.dispatch.alarms import report_alarms
from scheduler.dispatch.problem import ProblemBuilder, RoundInputs
from scheduler.observability import Metrics
from scheduler.snapshot import Snapshot
from store import Store
from vpp.dispatch import ModelCache, Plan, PlanStatus, SolveOptions, rolling_round, setpoints
from vpp.dispatch.payload import plan_from_payload, plan_payload

if TYPE_CHECKING:
    from scheduler.site import Site

log = logging.getLogger(__name__)

_STATUSES = [s.value for s in PlanStatus]


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
        self._created_by = created_by
        self._timer = timer
        self._cache = ModelCache()
        self._builder = ProblemBuilder(
            community_id, store, ZoneInfo(site.site.timezone), history_qh
        )
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
            await report_alarms(self._store.alarms, self.name, self.community_id, plan, now)
            return plan

    async def build_problem(self, snapshot: Snapshot, start: datetime) -> RoundInputs:
        """The dispatch problem for the horizon from ``start`` (a quarter-hour start, UTC)."""
        return await self._builder.build(self.site, snapshot, start, self.plan)

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

    # -- the cycle's setpoints -----------------------------------------------------------------

    def commands(self, now: datetime) -> list[Command]:
        """Setpoints of the current plan for the quarter-hour of ``now`` (see
        :mod:`vpp.dispatch.commands`: ids, expiry, ``site.dispatch.revert_s``, reasons).
        Assets the round could not control (silent devices, non-curtailable PV) get none."""
        if self.plan is None:
            return []
        return setpoints(
            self.plan,
            now,
            self.controllable,
            source=self.name,
            revert_s=self.site.dispatch.revert_s,
            tz=ZoneInfo(self.site.site.timezone),
        )

    def decide(self, snapshot: Snapshot) -> list[Command]:
        """The cycle's decider: the current plan's setpoints at the snapshot's instant."""
        return self.commands(snapshot.at)
