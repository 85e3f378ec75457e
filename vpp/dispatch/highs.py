"""Run a :class:`MatrixLp` with HiGHS (``highspy``), the default solver.

The algorithm is chosen explicitly, by measurement (``bench/bench_dispatch.py``, 1,000
members, 2 cores): on this lean formulation with finite physical bounds on every column the
dual simplex (≈ 9 s) beat the interior point method without crossover (≈ 28 s) and PDLP (no
result in 60 s). The issue's "IPM ten times faster" held for the degenerate per-member pool
formulation, which is not used here.
The solver's own ``time_limit`` bounds the run; the runtime calls the whole solve in a worker
thread (``asyncio.to_thread``) because the pure core may not touch threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import highspy
import numpy as np

from vpp.dispatch.bounds import FloatArray
from vpp.dispatch.matrix import MatrixLp


class Algorithm(enum.Enum):
    IPM = "ipm"
    SIMPLEX = "simplex"
    PDLP = "pdlp"
    CHOOSE = "choose"


class RunStatus(enum.Enum):
    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    INFEASIBLE = "infeasible"
    FAILED = "failed"


@dataclass(frozen=True)
class HighsOptions:
    """How HiGHS runs. ``crossover`` turns an interior solution into a vertex (slower)."""

    algorithm: Algorithm = Algorithm.SIMPLEX
    crossover: bool = False
    time_limit_s: float = 60.0
    threads: int | None = None
    presolve: bool = True


@dataclass(frozen=True)
class HighsRun:
    status: RunStatus
    detail: str
    col_value: FloatArray
    row_dual: FloatArray
    objective: float | None
    run_time_s: float


def new_highs(options: HighsOptions) -> highspy.Highs:
    """A silent HiGHS instance with the options set."""
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", options.algorithm.value)
    h.setOptionValue("run_crossover", "on" if options.crossover else "off")
    h.setOptionValue("time_limit", float(options.time_limit_s))
    h.setOptionValue("presolve", "on" if options.presolve else "off")
    if options.threads is not None:
        h.setOptionValue("threads", int(options.threads))
    return h


def pass_model(h: highspy.Highs, lp: MatrixLp) -> None:
    """Hand the whole LP to HiGHS in one call."""
    model = highspy.HighsLp()
    model.num_col_ = lp.n_col
    model.num_row_ = lp.n_row
    model.col_cost_ = lp.cost
    model.col_lower_ = lp.lower
    model.col_upper_ = lp.upper
    model.row_lower_ = lp.row_lower
    model.row_upper_ = lp.row_upper
    model.offset_ = lp.offset
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.num_col_ = lp.n_col
    model.a_matrix_.num_row_ = lp.n_row
    model.a_matrix_.start_ = lp.start
    model.a_matrix_.index_ = lp.index
    model.a_matrix_.value_ = lp.value
    status = h.passModel(model)
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected the model ({lp.n_col} columns, {lp.n_row} rows)")


_STATUS = {
    highspy.HighsModelStatus.kOptimal: RunStatus.OPTIMAL,
    highspy.HighsModelStatus.kTimeLimit: RunStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kInfeasible: RunStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: RunStatus.INFEASIBLE,
}


def run(h: highspy.Highs, n_col: int, n_row: int) -> HighsRun:
    """Solve the model held by ``h``; never raises for solver outcomes, reports them."""
    h.run()
    model_status = h.getModelStatus()
    status = _STATUS.get(model_status, RunStatus.FAILED)
    detail = h.modelStatusToString(model_status)
    run_time = float(h.getRunTime())
    if status is not RunStatus.OPTIMAL:
        empty = np.zeros(0)
        return HighsRun(status, detail, empty, empty, None, run_time)
    sol = h.getSolution()
    x = np.asarray(sol.col_value, dtype=float)
    y = np.asarray(sol.row_dual, dtype=float) if sol.dual_valid else np.zeros(n_row)
    if len(x) != n_col:
        return HighsRun(
            RunStatus.FAILED, "no primal solution", np.zeros(0), np.zeros(0), None, run_time
        )
    objective = float(h.getInfo().objective_function_value)
    return HighsRun(status, detail, x, y, objective, run_time)
