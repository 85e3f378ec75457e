"""``solve(problem, options) -> Plan``: one dispatch round, always returning a plan.

Pure: values in, plan out; no clock, no threads. The runtime runs it in a worker thread
(``await asyncio.to_thread(solve, problem, options, last_plan)``); the time limit is the
solver's own (``HighsOptions.time_limit_s``). Timings of the modelling layer need a timer from
the caller (``SolveOptions.timer``, e.g. ``time.perf_counter``); the solver time comes from
HiGHS's clock.

The ladder (fault F9): configuration errors raise :class:`InvalidAssetConfig`; an unusable
forecast (:class:`InvalidForecast`), an infeasible model (possible only with
``hard_feeder_limit``), a solver failure or time-out give the last valid plan shifted forward,
else the safe default — with an alarm naming the cause.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vpp.dispatch.assemble import RawSolution, assemble_plan
from vpp.dispatch.community import DispatchProblem
from vpp.dispatch.decompose import DecompositionOptions, sample_duals, solve_decomposed
from vpp.dispatch.errors import InvalidForecast
from vpp.dispatch.fallback import fallback_raw, sanitize
from vpp.dispatch.highs import Algorithm, HighsOptions, RunStatus, new_highs, pass_model, run
from vpp.dispatch.matrix import build_matrix_lp
from vpp.dispatch.plan import Alarm, Plan, PlanStatus, Timings
from vpp.dispatch.readback import dual_bound, read_back
from vpp.dispatch.rolling import ModelCache
from vpp.dispatch.validate import validate_problem


class Engine(enum.Enum):
    #: MATRIX up to ``SolveOptions.decompose_from_flexible`` flexible members, else DECOMPOSED
    AUTO = "auto"
    #: numpy-built matrix passed to highspy in one call; inflexible members aggregated
    MATRIX = "matrix"
    #: the PuLP reference formulation, solved through PuLP (HiGHS or CBC)
    PULP = "pulp"
    #: Dantzig–Wolfe by the coupling rows, certified to ``decomposition.gap_tol``
    DECOMPOSED = "decomposed"


@dataclass(frozen=True)
class SolveOptions:
    """How to solve. Defaults are the measured best (see ``bench/bench_dispatch.py``)."""

    engine: Engine = Engine.AUTO
    highs: HighsOptions = field(default_factory=lambda: HighsOptions(Algorithm.SIMPLEX))
    pulp_solver: str = "highs"
    aggregate: bool = True
    hard_feeder_limit: bool = False
    timer: Callable[[], float] | None = None
    decomposition: DecompositionOptions = field(default_factory=DecompositionOptions)
    #: measured on 2 cores: the exact monolithic LP takes ~9 s at ~700 flexible members and
    #: did not finish in 900 s at ~7,000; the decomposition (gap ≤ 0.5 %) scales further
    decompose_from_flexible: int = 1000


def _elapsed(timer: Callable[[], float] | None, since: float | None) -> float | None:
    return None if timer is None or since is None else timer() - since


def _now(timer: Callable[[], float] | None) -> float | None:
    return None if timer is None else timer()


def _fallback(problem: DispatchProblem, last: Plan | None, alarm: Alarm, timings: Timings) -> Plan:
    raw, status = fallback_raw(problem, last)
    rung = "the last valid plan" if status is PlanStatus.FALLBACK_LAST_PLAN else "the safe default"
    alarms = (alarm, Alarm("dispatch_fallback", f"dispatch fell back to {rung}"))
    return assemble_plan(problem, raw, status, alarms, timings)


#: raw solution (None if none), detail for the alarm, timings, status of a returned solution
_Outcome = tuple[RawSolution | None, str, Timings, PlanStatus]


def _solve_matrix(
    problem: DispatchProblem, options: SolveOptions, cache: ModelCache | None
) -> _Outcome:
    timer = options.timer
    t0 = _now(timer)
    lp = build_matrix_lp(
        problem, aggregate=options.aggregate, hard_feeder_limit=options.hard_feeder_limit
    )
    if cache is not None:
        h = cache.highs_for(lp, options.highs)
    else:
        h = new_highs(options.highs)
        pass_model(h, lp)
    build_s = _elapsed(timer, t0)
    result = run(h, lp.n_col, lp.n_row)
    if result.status is not RunStatus.OPTIMAL:
        timings = Timings(build_s, result.run_time_s, None)
        return None, f"{result.status.value}: {result.detail}", timings, PlanStatus.OPTIMAL
    t1 = _now(timer)
    raw = read_back(problem, lp, result.col_value)
    raw.solver_objective_eur = result.objective
    raw.dual_bound_eur = dual_bound(lp, result.row_dual) if result.row_dual.any() else None
    timings = Timings(build_s, result.run_time_s, _elapsed(timer, t1))
    return raw, "optimal", timings, PlanStatus.OPTIMAL


def _solve_decomposed(
    problem: DispatchProblem, options: SolveOptions, cache: ModelCache | None
) -> _Outcome:
    timer = options.timer
    t0 = _now(timer)
    lp = build_matrix_lp(problem, aggregate=options.aggregate)
    build_s = _elapsed(timer, t0)
    dw = options.decomposition
    start, sample_s = None, 0.0
    if dw.sample_every is not None and dw.sample_every > 1:
        start, sample_s = sample_duals(problem, dw.sample_every, options.highs)
    result = solve_decomposed(lp, dw, options.highs, timer, start)
    solver_s = result.solver_time_s + sample_s
    detail = f"decomposition {result.status.value}: {result.detail}"
    usable = result.status is RunStatus.TIME_LIMIT and np.isfinite(result.upper_bound)
    if result.status is not RunStatus.OPTIMAL and not usable:
        return None, detail, Timings(build_s, solver_s, None), PlanStatus.OPTIMAL
    t1 = _now(timer)
    raw = read_back(problem, lp, result.col_value)
    raw.solver_objective_eur = result.upper_bound
    raw.dual_bound_eur = result.lower_bound if np.isfinite(result.lower_bound) else None
    timings = Timings(build_s, solver_s, _elapsed(timer, t1))
    status = PlanStatus.OPTIMAL if result.status is RunStatus.OPTIMAL else PlanStatus.AT_LIMIT
    return raw, detail, timings, status


def _solve_pulp(
    problem: DispatchProblem, options: SolveOptions, cache: ModelCache | None
) -> _Outcome:
    from vpp.dispatch.reference import (  # PuLP is loaded only when asked for
        build_reference,
        pulp_solver,
        read_reference,
        solve_reference_with_pulp,
    )

    timer = options.timer
    t0 = _now(timer)
    ref = build_reference(problem, hard_feeder_limit=options.hard_feeder_limit)
    build_s = _elapsed(timer, t0)
    t1 = _now(timer)
    solver = pulp_solver(
        options.pulp_solver, options.highs.time_limit_s, options.highs.algorithm.value
    )
    status = solve_reference_with_pulp(ref, solver)
    solve_s = _elapsed(timer, t1)
    if status != "Optimal":
        return None, f"PuLP status {status}", Timings(build_s, solve_s, None), PlanStatus.OPTIMAL
    t2 = _now(timer)
    raw = read_reference(problem, ref)
    return raw, "optimal", Timings(build_s, solve_s, _elapsed(timer, t2)), PlanStatus.OPTIMAL


def solve(
    problem: DispatchProblem,
    options: SolveOptions | None = None,
    last_plan: Plan | None = None,
    *,
    cache: ModelCache | None = None,
) -> Plan:
    """Plan the community for ``problem``'s horizon; see the module doc for the ladder.

    ``last_plan`` is the last plan whose status was not a fallback (the caller keeps it).
    ``cache`` keeps the solver model between rolling rounds (matrix engine only).
    """
    options = options or SolveOptions()
    empty = Timings(None, None, None)
    try:
        validate_problem(problem)
    except InvalidForecast as exc:
        alarm = Alarm("dispatch_invalid_forecast", str(exc))
        return _fallback(sanitize(problem), last_plan, alarm, empty)
    engine = options.engine
    if engine is Engine.AUTO:
        n_flexible = sum(1 for m in problem.members if m.is_flexible)
        big = n_flexible >= options.decompose_from_flexible
        engine = Engine.DECOMPOSED if big else Engine.MATRIX
    solve_one = {
        Engine.MATRIX: _solve_matrix,
        Engine.PULP: _solve_pulp,
        Engine.DECOMPOSED: _solve_decomposed,
    }[engine]
    try:
        raw, detail, timings, status = solve_one(problem, options, cache)
    except (ValueError, RuntimeError, MemoryError, np.linalg.LinAlgError) as exc:
        alarm = Alarm("dispatch_solver_error", f"{type(exc).__name__}: {exc}")
        return _fallback(problem, last_plan, alarm, empty)
    if raw is None:
        alarm = Alarm("dispatch_solver_failed", f"community {problem.community_id}: {detail}")
        return _fallback(problem, last_plan, alarm, timings)
    alarms: tuple[Alarm, ...] = ()
    if status is PlanStatus.AT_LIMIT:
        alarms = (Alarm("dispatch_at_limit", f"community {problem.community_id}: {detail}"),)
    return assemble_plan(problem, raw, status, alarms, timings)
