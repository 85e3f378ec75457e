"""The rolling dispatch: keep the HiGHS model between quarter-hours, change only numbers.

Every quarter-hour the plan is renewed from measured states of charge and new forecasts. The
LP's matrix depends only on the community's structure (members, assets, efficiencies, horizon
length); forecasts, prices, windows, states of charge and limits are costs, bounds and
right-hand sides. So a :class:`ModelCache` keeps the last model: if the new matrix equals the
held one, it changes costs and bounds in place and HiGHS restarts from the last optimal basis
(warm start); otherwise it passes the new model. ``bench/bench_dispatch.py`` measures both.

This class holds a resource (the solver model), which is why it is a class. It is not
thread-safe: one cache per community, used by one worker at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import highspy
import numpy as np

from vpp.dispatch.community import DispatchProblem
from vpp.dispatch.highs import HighsOptions, new_highs, pass_model
from vpp.dispatch.matrix import MatrixLp
from vpp.dispatch.plan import Plan, PlanStatus

if TYPE_CHECKING:
    from vpp.dispatch.solve import SolveOptions


@dataclass
class _Held:
    lp: MatrixLp
    highs: highspy.Highs
    options: HighsOptions


def _same_matrix(a: MatrixLp, b: MatrixLp) -> bool:
    return (
        a.n_col == b.n_col
        and a.n_row == b.n_row
        and np.array_equal(a.start, b.start)
        and np.array_equal(a.index, b.index)
        and np.array_equal(a.value, b.value)
    )


class ModelCache:
    """Holds the last HiGHS model of one community; counts warm and cold rounds."""

    def __init__(self) -> None:
        self._held: _Held | None = None
        self.warm_rounds = 0
        self.cold_rounds = 0
        self.last_valid_plan: Plan | None = None

    def highs_for(self, lp: MatrixLp, options: HighsOptions) -> highspy.Highs:
        """A HiGHS instance holding ``lp``: the held one updated in place when possible."""
        held = self._held
        if held is not None and held.options == options and _same_matrix(held.lp, lp):
            n, m = lp.n_col, lp.n_row
            cols = np.arange(n, dtype=np.int32)
            rows = np.arange(m, dtype=np.int32)
            h = held.highs
            h.changeColsCost(n, cols, lp.cost)
            h.changeColsBounds(n, cols, lp.lower, lp.upper)
            h.changeRowsBounds(m, rows, lp.row_lower, lp.row_upper)  # type: ignore[attr-defined]
            h.changeObjectiveOffset(lp.offset)
            held.lp = lp
            self.warm_rounds += 1
            return h
        h = new_highs(options)
        pass_model(h, lp)
        self._held = _Held(lp, h, options)
        self.cold_rounds += 1
        return h

    def forget(self) -> None:
        """Drop the held model (after a failed run its basis is not worth keeping)."""
        self._held = None

    def remember(self, plan: Plan) -> None:
        """Keep ``plan`` as the last valid plan if it came from the solver."""
        if not plan.status.is_fallback:
            self.last_valid_plan = plan


def rolling_round(
    problem: DispatchProblem, cache: ModelCache, options: SolveOptions | None = None
) -> Plan:
    """One rolling round: solve with the cached model and the cache's last valid plan.

    The runtime calls this every quarter-hour in a worker thread, with measured states of
    charge and new forecasts in ``problem``; every cycle it commands the
    :func:`~vpp.dispatch.commands.setpoints` of the quarter-hour it is in.
    """
    from vpp.dispatch.solve import solve  # solve imports this module

    plan = solve(problem, options, cache.last_valid_plan, cache=cache)
    cache.remember(plan)
    if plan.status in (PlanStatus.FALLBACK_LAST_PLAN, PlanStatus.FALLBACK_SAFE_DEFAULT):
        cache.forget()
    return plan
