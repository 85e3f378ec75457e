"""The dispatch LP in matrix form: built with numpy, handed to HiGHS in one call.

This is the fast path. It states the same LP as :mod:`vpp.dispatch.reference` (the readable
PuLP formulation, which stays the reference; a test checks that both reach the same optimum),
but builds every block as index and coefficient arrays and passes the whole column-wise matrix
to ``highspy`` at once instead of adding rows one call at a time.

Structure used (exact, see the module tests):

* Members without flexibility (only fixed load and PV) have constant flows. They enter the
  community rows as constants ``E`` (their total export) and ``I`` (total import), plus two
  aggregate columns per quarter-hour: ``x`` curtails their surplus (less export), ``y`` curtails
  PV that covers their own load (more import). The plan disaggregates ``x`` and ``y`` pro rata.
  Set ``aggregate=False`` to model every member individually (the monolithic LP).
* Every column has a finite physical bound (imports ≤ load plus flexible consumption, ...), so
  any dual vector certifies a lower bound (:func:`vpp.dispatch.readback.dual_bound`).

Units: kW (mean power per quarter-hour), kWh, EUR. Rows per quarter-hour ``t``:
member balance ``pv + dis + imp − ch − loads − exp = load``; battery ``soc_t − soc_{t−1} −
η_c·¼·ch + ¼/η_d·dis = 0``; energy need ``Σ ¼·p + unmet ∈ [need, max]``; sharing
``shared ≤ Σ export``, ``shared ≤ Σ import``; feeder ``net import − slack ≤ limit`` both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from vpp.dispatch.assemble import Key
from vpp.dispatch.bounds import (
    FloatArray,
    deferrable_bounds,
    feed_in_effective,
    pv_forecast_kw,
    soc_bounds_kwh,
)
from vpp.dispatch.community import (
    QH_H,
    Battery,
    DeferrableLoad,
    DispatchProblem,
    EvCharger,
    Member,
    Pv,
    StorageHeater,
    Weights,
)

IntArray = NDArray[np.int64]
INF = np.inf


@dataclass
class _Aggregate:
    """Inflexible members folded into constants and the x/y columns, for disaggregation."""

    members: list[Member]
    surplus_cut_kw: FloatArray  # (k, T): X_i, curtailable surplus per member
    self_cut_kw: FloatArray  # (k, T): Y_i, curtailable self-consumed PV per member
    x_cols: IntArray
    y_cols: IntArray


@dataclass
class Layout:
    """Where each decision lives among the columns (for read-back and for rolling updates)."""

    pv_cols: dict[str, IntArray] = field(default_factory=dict)
    charge_cols: dict[Key, IntArray] = field(default_factory=dict)
    discharge_cols: dict[Key, IntArray] = field(default_factory=dict)
    deferrable_cols: dict[Key, IntArray] = field(default_factory=dict)
    flexible: list[Member] = field(default_factory=list)
    aggregate: _Aggregate | None = None
    #: per flexible member, in order: its first column and first row (for decomposition);
    #: rows ``[0, community_rows)`` couple the members, columns from ``community_cols`` on
    #: belong to the community (shared energy, aggregate, feeder slack)
    member_col_start: list[int] = field(default_factory=list)
    member_row_start: list[int] = field(default_factory=list)
    community_rows: int = 0
    community_cols: int = 0
    #: the community rows the members' grid flows enter
    coupling: _Coupling | None = None


@dataclass
class MatrixLp:
    """``min cost·x + offset`` s.t. ``row_lower ≤ A x ≤ row_upper``, ``lower ≤ x ≤ upper``.

    ``A`` is column-wise (``start``, ``index``, ``value``); ``nz_col`` is each entry's column.
    """

    cost: FloatArray
    lower: FloatArray
    upper: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    start: NDArray[np.int32]
    index: NDArray[np.int32]
    value: FloatArray
    nz_col: NDArray[np.int64]
    offset: float
    layout: Layout

    @property
    def n_col(self) -> int:
        return len(self.cost)

    @property
    def n_row(self) -> int:
        return len(self.row_lower)


class _Builder:
    """Collects columns, rows and coefficients as arrays; one concatenation at the end."""

    def __init__(self) -> None:
        self.n_col = 0
        self.n_row = 0
        self.cost: list[FloatArray] = []
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []
        self.rlo: list[FloatArray] = []
        self.rhi: list[FloatArray] = []
        self.nz_r: list[IntArray] = []
        self.nz_c: list[IntArray] = []
        self.nz_v: list[FloatArray] = []

    def cols(self, n: int, cost: object, lo: object, hi: object) -> IntArray:
        idx = np.arange(self.n_col, self.n_col + n)
        self.n_col += n
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=float), (n,)))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)))
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)))
        return idx

    def rows(self, n: int, lo: object, hi: object) -> IntArray:
        idx = np.arange(self.n_row, self.n_row + n)
        self.n_row += n
        self.rlo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)))
        self.rhi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)))
        return idx

    def coef(self, rows: IntArray, cols: IntArray, value: object) -> None:
        self.nz_r.append(rows)
        self.nz_c.append(cols)
        self.nz_v.append(np.broadcast_to(np.asarray(value, dtype=float), rows.shape))

    def finish(self, offset: float, layout: Layout) -> MatrixLp:
        rows = np.concatenate(self.nz_r)
        cols = np.concatenate(self.nz_c)
        vals = np.concatenate(self.nz_v)
        order = np.lexsort((rows, cols))
        cols = cols[order]
        start = np.searchsorted(cols, np.arange(self.n_col + 1)).astype(np.int32)
        return MatrixLp(
            cost=np.concatenate(self.cost),
            lower=np.concatenate(self.lo),
            upper=np.concatenate(self.hi),
            row_lower=np.concatenate(self.rlo),
            row_upper=np.concatenate(self.rhi),
            start=start,
            index=rows[order].astype(np.int32),
            value=vals[order],
            nz_col=cols,
            offset=offset,
            layout=layout,
        )


def _inflexible_constants(
    members: list[Member], n: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-member curtailable surplus and self-consumed PV, and the total export E, import I."""
    k = len(members)
    load = np.zeros((k, n))
    pv = np.zeros((k, n))
    fixed = np.zeros((k, n))
    for i, m in enumerate(members):
        load[i] = m.load_w
        pv[i], fixed[i] = pv_forecast_kw(m, n)
    load /= 1000.0
    curtailable = pv - fixed
    surplus = pv - load
    cut_surplus = np.minimum(curtailable, np.maximum(surplus, 0.0))
    cut_self = np.maximum(np.minimum(curtailable - cut_surplus, np.minimum(pv, load)), 0.0)
    exports = np.maximum(surplus, 0.0).sum(axis=0)
    imports = np.maximum(-surplus, 0.0).sum(axis=0)
    return cut_surplus, cut_self, exports, imports


@dataclass(frozen=True)
class _Coupling:
    """The community rows every member's grid flows enter: sharing (``shared ≤ Σ export``,
    ``shared ≤ Σ import``) and the feeder limits (``None`` where the community has none)."""

    share_exp: IntArray
    share_imp: IntArray
    feeder_imp: IntArray | None
    feeder_exp: IntArray | None

    def add(self, b: _Builder, imp: IntArray, exp: IntArray) -> None:
        """A member's import and export columns in the community rows."""
        b.coef(self.share_exp, exp, -1.0)
        b.coef(self.share_imp, imp, -1.0)
        if self.feeder_imp is not None:
            b.coef(self.feeder_imp, imp, 1.0)
            b.coef(self.feeder_imp, exp, -1.0)
        if self.feeder_exp is not None:
            b.coef(self.feeder_exp, exp, 1.0)
            b.coef(self.feeder_exp, imp, -1.0)


def _battery(b: _Builder, w: Weights, a: Battery, n: int) -> tuple[IntArray, IntArray]:
    """Charge and discharge columns (kW), the state of charge and its end-state target."""
    dt = QH_H
    ch = b.cols(n, w.battery_wear_eur_per_kwh * dt, 0.0, a.max_charge_w / 1e3)
    dis = b.cols(n, w.battery_wear_eur_per_kwh * dt, 0.0, a.max_discharge_w / 1e3)
    soc_lo, soc_hi = soc_bounds_kwh(a, n)
    soc = b.cols(n, 0.0, soc_lo, soc_hi)
    rhs = np.zeros(n)
    rhs[0] = a.soc_wh / 1e3
    srow = b.rows(n, rhs, rhs)
    b.coef(srow, soc, 1.0)
    b.coef(srow[1:], soc[:-1], -1.0)
    b.coef(srow, ch, -a.charge_efficiency * dt)
    b.coef(srow, dis, dt / a.discharge_efficiency)
    if a.terminal_soc_wh is not None:
        target = a.terminal_soc_wh / 1e3
        short = b.cols(1, w.terminal_soc_shortfall_eur_per_kwh, 0.0, target)
        trow = b.rows(1, target, INF)
        b.coef(trow, soc[-1:], 1.0)
        b.coef(trow, short, 1.0)
    return ch, dis


def _deferrable(b: _Builder, w: Weights, a: DeferrableLoad, n: int) -> tuple[IntArray, FloatArray]:
    """The load's power columns (kW) with its energy band; returns them and their upper bound."""
    db = deferrable_bounds(a, n)
    d = b.cols(n, 0.0, db.lower_kw, db.upper_kw)
    unmet = b.cols(1, w.unmet_energy_eur_per_kwh, 0.0, db.need_kwh)
    nrow = b.rows(1, db.need_kwh, max(db.max_kwh, db.need_kwh))
    b.coef(np.repeat(nrow, n), d, QH_H)
    b.coef(nrow, unmet, 1.0)
    return d, db.upper_kw


@dataclass(frozen=True)
class _Prices:
    imp: FloatArray  # EUR/kWh per quarter-hour
    exp: FloatArray  # the effective feed-in price (:func:`feed_in_effective`)


def _flexible_member(
    b: _Builder, layout: Layout, problem: DispatchProblem, member: Member, prices: _Prices
) -> tuple[float, FloatArray, FloatArray]:
    """The member's columns and rows (balance at its meter, its assets, its grid flows in the
    community rows of ``layout``); returns the objective's constant part and the upper bounds
    (kW) of its import and export."""
    n, w, dt = problem.n_qh, problem.weights, QH_H
    m = member.member_id
    load = np.asarray(member.load_w, dtype=float) / 1000.0
    pv_total, pv_fixed = pv_forecast_kw(member, n)
    imp_hi = load.copy()
    exp_hi = pv_total.copy()
    offset = 0.0
    bal = b.rows(n, load, load)
    entries: list[tuple[IntArray, float]] = []
    if any(isinstance(a, Pv) for a in member.assets):
        pv = b.cols(n, -w.curtailment_eur_per_kwh * dt, pv_fixed, pv_total)
        offset = float(np.sum(pv_total)) * dt * w.curtailment_eur_per_kwh
        layout.pv_cols[m] = pv
        entries.append((pv, 1.0))
    for a in member.assets:
        key = (m, a.asset_id)
        if isinstance(a, Battery):
            ch, dis = _battery(b, w, a, n)
            layout.charge_cols[key] = ch
            layout.discharge_cols[key] = dis
            entries += [(dis, 1.0), (ch, -1.0)]
            imp_hi += a.max_charge_w / 1e3
            exp_hi += a.max_discharge_w / 1e3
        elif isinstance(a, EvCharger | StorageHeater):
            d, upper_kw = _deferrable(b, w, a, n)
            layout.deferrable_cols[key] = d
            entries.append((d, -1.0))
            imp_hi += upper_kw
    imp = b.cols(n, prices.imp * dt, 0.0, imp_hi)
    exp = b.cols(n, -prices.exp * dt, 0.0, exp_hi)
    entries += [(imp, 1.0), (exp, -1.0)]
    for cols, sign in entries:
        b.coef(bal, cols, sign)
    assert layout.coupling is not None
    layout.coupling.add(b, imp, exp)
    return offset, imp_hi, exp_hi


def _aggregate_cols(
    b: _Builder,
    coupling: _Coupling,
    w: Weights,
    prices: _Prices,
    x_hi: FloatArray,
    y_hi: FloatArray,
) -> tuple[IntArray, IntArray]:
    """The inflexible members' two aggregate columns per quarter-hour: ``x`` curtails their
    surplus (less export), ``y`` their self-consumed PV (more import), both in kW."""
    n, dt = len(x_hi), QH_H
    x = b.cols(n, (prices.exp + w.curtailment_eur_per_kwh) * dt, 0.0, x_hi)
    y = b.cols(n, (prices.imp + w.curtailment_eur_per_kwh) * dt, 0.0, y_hi)
    b.coef(coupling.share_exp, x, 1.0)
    b.coef(coupling.share_imp, y, -1.0)
    for rows, sign in ((coupling.feeder_imp, 1.0), (coupling.feeder_exp, -1.0)):
        if rows is not None:
            b.coef(rows, x, sign)
            b.coef(rows, y, sign)
    return x, y


def build_matrix_lp(
    problem: DispatchProblem, *, aggregate: bool = True, hard_feeder_limit: bool = False
) -> MatrixLp:
    """Build the community LP. ``aggregate=False`` gives the monolithic (reference-size) LP."""
    n = problem.n_qh
    dt = QH_H
    w = problem.weights
    p = problem.prices
    prices = _Prices(np.asarray(p.import_eur_per_kwh, dtype=float), feed_in_effective(p))
    share_value = w.sharing * (prices.imp - np.asarray(p.network_fee_eur_per_kwh) - prices.exp)
    b = _Builder()
    layout = Layout()
    offset = 0.0

    layout.flexible = [m for m in problem.members if m.is_flexible or not aggregate]
    inflexible = [m for m in problem.members if not (m.is_flexible or not aggregate)]
    e_const, i_const = np.zeros(n), np.zeros(n)
    x_hi, y_hi = np.zeros(n), np.zeros(n)
    if inflexible:
        cut_surplus, cut_self, e_const, i_const = _inflexible_constants(inflexible, n)
        x_hi = cut_surplus.sum(axis=0)
        y_hi = cut_self.sum(axis=0)
        offset += float(np.sum((prices.imp * i_const - prices.exp * e_const) * dt))

    lim_imp, lim_exp = problem.feeder_import_limit_w, problem.feeder_export_limit_w
    coupling = _Coupling(
        b.rows(n, -INF, e_const),
        b.rows(n, -INF, i_const),
        b.rows(n, -INF, lim_imp / 1e3 - i_const + e_const) if lim_imp is not None else None,
        b.rows(n, -INF, lim_exp / 1e3 - e_const + i_const) if lim_exp is not None else None,
    )
    layout.coupling = coupling
    sum_imp_hi = i_const + y_hi
    sum_exp_hi = e_const.copy()
    layout.community_rows = b.n_row
    for member in layout.flexible:
        layout.member_col_start.append(b.n_col)
        layout.member_row_start.append(b.n_row)
        member_offset, imp_hi, exp_hi = _flexible_member(b, layout, problem, member, prices)
        offset += member_offset
        sum_imp_hi += imp_hi
        sum_exp_hi += exp_hi

    layout.community_cols = b.n_col
    if inflexible:
        x, y = _aggregate_cols(b, coupling, w, prices, x_hi, y_hi)
        layout.aggregate = _Aggregate(inflexible, cut_surplus, cut_self, x, y)
    shared = b.cols(n, -share_value * dt, 0.0, np.minimum(sum_imp_hi, sum_exp_hi))
    b.coef(coupling.share_exp, shared, 1.0)
    b.coef(coupling.share_imp, shared, 1.0)
    slack_hi = 0.0 if hard_feeder_limit else sum_imp_hi + sum_exp_hi
    for rows in (coupling.feeder_imp, coupling.feeder_exp):
        if rows is not None:
            slack = b.cols(n, w.feeder_violation_eur_per_kwh * dt, 0.0, slack_hi)
            b.coef(rows, slack, -1.0)
    return b.finish(offset, layout)
