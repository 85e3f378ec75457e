"""Reading a solved matrix LP back: decisions per asset, and a certified bound from any duals.

The aggregated inflexible members' curtailment (the ``x`` and ``y`` columns of
:mod:`vpp.dispatch.matrix`) is spread over them pro rata to what each could curtail, and within
a member over its curtailable PV systems pro rata to their forecasts.
"""

from __future__ import annotations

import numpy as np

from vpp.dispatch.assemble import RawSolution
from vpp.dispatch.bounds import FloatArray, pv_forecast_kw
from vpp.dispatch.community import DispatchProblem, Member, Pv
from vpp.dispatch.matrix import MatrixLp


def read_back(problem: DispatchProblem, lp: MatrixLp, x: FloatArray) -> RawSolution:
    """Decisions per asset from the column values; the aggregate is disaggregated pro rata."""
    n = problem.n_qh
    raw = RawSolution()
    lay = lp.layout
    x = np.clip(x, lp.lower, lp.upper)  # solver tolerance must not leak past device limits
    for member in lay.flexible:
        m = member.member_id
        if m in lay.pv_cols:
            _split_pv(member, n, x[lay.pv_cols[m]], raw)
        for a in member.assets:
            key = (m, a.asset_id)
            if key in lay.charge_cols:
                raw.charge_kw[key] = x[lay.charge_cols[key]]
                raw.discharge_kw[key] = x[lay.discharge_cols[key]]
            elif key in lay.deferrable_cols:
                raw.deferrable_kw[key] = x[lay.deferrable_cols[key]]
    agg = lay.aggregate
    if agg is not None:
        frac_x = _fraction(x[agg.x_cols], agg.surplus_cut_kw.sum(axis=0))
        frac_y = _fraction(x[agg.y_cols], agg.self_cut_kw.sum(axis=0))
        cut = agg.surplus_cut_kw * frac_x + agg.self_cut_kw * frac_y
        for i, member in enumerate(agg.members):
            pv_total, _ = pv_forecast_kw(member, n)
            _split_pv(member, n, pv_total - cut[i], raw)
    return raw


def _fraction(part: FloatArray, whole: FloatArray) -> FloatArray:
    out: FloatArray = np.divide(part, whole, out=np.zeros_like(whole), where=whole > 1e-12)
    return np.clip(out, 0.0, 1.0)


def _split_pv(member: Member, n: int, output_kw: FloatArray, raw: RawSolution) -> None:
    """Spread a member's PV output over its PV assets: curtailment pro rata to forecast."""
    total, fixed = pv_forecast_kw(member, n)
    cut = np.clip(total - output_kw, 0.0, None)
    share = _fraction(cut, total - fixed)
    for a in member.assets:
        if isinstance(a, Pv):
            f = np.asarray(a.forecast_w, dtype=float) / 1000.0
            raw.pv_kw[(member.member_id, a.asset_id)] = f * (1 - share) if a.curtailable else f


def dual_bound(lp: MatrixLp, row_dual: FloatArray) -> float:
    """A certified lower bound on the LP optimum from any row dual vector (weak duality).

    Duals with the wrong sign for an infinite row side are set to zero (still a valid bound);
    every column is finitely bounded, so the column term is always finite.
    """
    y = np.where((row_dual > 0) & ~np.isfinite(lp.row_lower), 0.0, row_dual)
    y = np.where((y < 0) & ~np.isfinite(lp.row_upper), 0.0, y)
    reduced = lp.cost - np.bincount(lp.nz_col, weights=lp.value * y[lp.index], minlength=lp.n_col)
    rows = np.where(y > 0, y * np.where(y > 0, lp.row_lower, 0.0), 0.0) + np.where(
        y < 0, y * np.where(y < 0, lp.row_upper, 0.0), 0.0
    )
    cols = np.where(reduced > 0, reduced * lp.lower, reduced * lp.upper)
    return float(lp.offset + rows.sum() + cols.sum())
