"""The reference formulation of the dispatch LP, written with PuLP.

This is the readable statement of the model (PuLP is the modelling API); the matrix path in
:mod:`vpp.dispatch.matrix` states the same LP in array form for speed, and a test checks that
both reach the same optimum. Every member is modelled individually here (the monolithic LP).

Each row is built as one ``LpAffineExpression`` from (variable, coefficient) pairs instead of
``a + b - c == d`` chains, which copy dictionaries at every operator. The model can then be
solved with PuLP's own HiGHS or CBC interface, or passed to HiGHS in one call
(:func:`pulp_to_highs`). PuLP objects never leave this module: the result is a
:class:`RawSolution` of numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import highspy
import numpy as np
import pulp

from vpp.dispatch.assemble import Key, RawSolution
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
)
from vpp.dispatch.highs import HighsOptions, new_highs

Vars = list[pulp.LpVariable]


def _expr(
    pairs: list[tuple[pulp.LpVariable, float]], constant: float = 0.0
) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression(pairs, constant=constant)


def _row(
    model: pulp.LpProblem,
    pairs: list[tuple[pulp.LpVariable, float]],
    sense: int,
    rhs: float,
    name: str,
) -> None:
    model.addConstraint(pulp.LpConstraint(_expr(pairs), sense=sense, rhs=rhs, name=name))


@dataclass
class ReferenceModel:
    """The PuLP problem and the variables to read back, by member/asset key."""

    model: pulp.LpProblem
    pv: dict[str, Vars] = field(default_factory=dict)
    charge: dict[Key, Vars] = field(default_factory=dict)
    discharge: dict[Key, Vars] = field(default_factory=dict)
    deferrable: dict[Key, Vars] = field(default_factory=dict)


Pairs = list[tuple[pulp.LpVariable, float]]


@dataclass
class _Statement:
    """The LP as it is being stated: the model, the objective's terms and constant, and each
    quarter-hour's balance row of the member being stated."""

    problem: DispatchProblem
    ref: ReferenceModel
    objective: Pairs = field(default_factory=list)
    constant: float = 0.0

    @property
    def model(self) -> pulp.LpProblem:
        return self.ref.model


def _battery(st: _Statement, key: Key, atag: str, a: Battery, balance: list[Pairs]) -> None:
    """Charge, discharge and state of charge of one battery, its wear and end-state target."""
    n, dt, w, model = st.problem.n_qh, QH_H, st.problem.weights, st.model
    ch = [model.add_variable(f"ch_{atag}_{t}", 0, a.max_charge_w / 1e3) for t in range(n)]
    dis = [model.add_variable(f"dis_{atag}_{t}", 0, a.max_discharge_w / 1e3) for t in range(n)]
    lo, hi = soc_bounds_kwh(a, n)
    soc = [model.add_variable(f"soc_{atag}_{t}", float(lo[t]), float(hi[t])) for t in range(n)]
    for t in range(n):
        pairs = [
            (soc[t], 1.0),
            (ch[t], -a.charge_efficiency * dt),
            (dis[t], dt / a.discharge_efficiency),
        ]
        if t > 0:
            pairs.append((soc[t - 1], -1.0))
        rhs = a.soc_wh / 1e3 if t == 0 else 0.0
        _row(model, pairs, pulp.LpConstraintEQ, rhs, f"soc_{atag}_{t}")
        balance[t] += [(dis[t], 1.0), (ch[t], -1.0)]
        st.objective += [(ch[t], w.battery_wear_eur_per_kwh * dt)]
        st.objective += [(dis[t], w.battery_wear_eur_per_kwh * dt)]
    if a.terminal_soc_wh is not None:
        short = model.add_variable(f"short_{atag}", 0)
        st.objective.append((short, w.terminal_soc_shortfall_eur_per_kwh))
        target = a.terminal_soc_wh / 1e3
        pairs = [(soc[-1], 1.0), (short, 1.0)]
        _row(model, pairs, pulp.LpConstraintGE, target, f"terminal_{atag}")
    st.ref.charge[key] = ch
    st.ref.discharge[key] = dis


def _deferrable(
    st: _Statement, key: Key, atag: str, a: DeferrableLoad, balance: list[Pairs]
) -> None:
    """One EV's or storage heater's power with its energy band (the need is soft)."""
    n, dt, model = st.problem.n_qh, QH_H, st.model
    db = deferrable_bounds(a, n)
    d = [
        model.add_variable(f"d_{atag}_{t}", float(db.lower_kw[t]), float(db.upper_kw[t]))
        for t in range(n)
    ]
    unmet = model.add_variable(f"unmet_{atag}", 0)
    st.objective.append((unmet, st.problem.weights.unmet_energy_eur_per_kwh))
    delivered = [(d[t], dt) for t in range(n)]
    _row(model, [*delivered, (unmet, 1.0)], pulp.LpConstraintGE, db.need_kwh, f"need_{atag}")
    most = max(db.max_kwh, db.need_kwh)
    _row(model, delivered, pulp.LpConstraintLE, most, f"most_{atag}")
    for t in range(n):
        balance[t].append((d[t], -1.0))
    st.ref.deferrable[key] = d


def _member(st: _Statement, mi: int, member: Member, feed_in: FloatArray) -> tuple[Vars, Vars]:
    """One member's grid flows, PV and assets, and its balance at the meter; returns its
    import and export variables."""
    n, dt, w, model = st.problem.n_qh, QH_H, st.problem.weights, st.model
    pr = st.problem.prices
    m = member.member_id
    tag = f"m{mi}"
    load = np.asarray(member.load_w, dtype=float) / 1000.0
    imp = [model.add_variable(f"imp_{tag}_{t}", 0) for t in range(n)]
    exp = [model.add_variable(f"exp_{tag}_{t}", 0) for t in range(n)]
    balance: list[Pairs] = [[(imp[t], 1.0), (exp[t], -1.0)] for t in range(n)]
    for t in range(n):
        st.objective += [(imp[t], pr.import_eur_per_kwh[t] * dt)]
        st.objective += [(exp[t], -float(feed_in[t]) * dt)]
    pv_total, pv_fixed = pv_forecast_kw(member, n)
    if any(isinstance(a, Pv) for a in member.assets):
        pv = [
            model.add_variable(f"pv_{tag}_{t}", float(pv_fixed[t]), float(pv_total[t]))
            for t in range(n)
        ]
        st.ref.pv[m] = pv
        st.constant += float(pv_total.sum()) * dt * w.curtailment_eur_per_kwh
        for t in range(n):
            balance[t].append((pv[t], 1.0))
            st.objective.append((pv[t], -w.curtailment_eur_per_kwh * dt))
    for ai, a in enumerate(member.assets):
        if isinstance(a, Battery):
            _battery(st, (m, a.asset_id), f"{tag}_a{ai}", a, balance)
        elif isinstance(a, EvCharger | StorageHeater):
            _deferrable(st, (m, a.asset_id), f"{tag}_a{ai}", a, balance)
    for t in range(n):
        _row(model, balance[t], pulp.LpConstraintEQ, float(load[t]), f"balance_{tag}_{t}")
    return imp, exp


def _community(
    st: _Statement,
    t: int,
    all_imp: list[Vars],
    all_exp: list[Vars],
    feed_in: FloatArray,
    hard_feeder_limit: bool,
) -> None:
    """Quarter-hour ``t``'s shared energy (bounded by Σ export and Σ import) and the feeder
    limits (soft with a slack, unless hard)."""
    problem, dt, w, model = st.problem, QH_H, st.problem.weights, st.model
    pr = problem.prices
    value = w.sharing * (pr.import_eur_per_kwh[t] - pr.network_fee_eur_per_kwh[t] - feed_in[t])
    shared = model.add_variable(f"shared_{t}", 0)
    st.objective.append((shared, -float(value) * dt))
    imports = [(v[t], 1.0) for v in all_imp]
    exports = [(v[t], 1.0) for v in all_exp]
    for side, flows in (("export", exports), ("import", imports)):
        pairs = [(shared, 1.0)] + [(v, -1.0) for v, _ in flows]
        _row(model, pairs, pulp.LpConstraintLE, 0.0, f"shared_le_{side}_{t}")
    net_import = imports + [(v, -1.0) for v, _ in exports]
    net_export = exports + [(v, -1.0) for v, _ in imports]
    for name, limit, pairs in (
        ("feeder_import", problem.feeder_import_limit_w, net_import),
        ("feeder_export", problem.feeder_export_limit_w, net_export),
    ):
        if limit is None:
            continue
        if not hard_feeder_limit:
            slack = model.add_variable(f"{name}_slack_{t}", 0)
            st.objective.append((slack, w.feeder_violation_eur_per_kwh * dt))
            pairs = [*pairs, (slack, -1.0)]
        _row(model, pairs, pulp.LpConstraintLE, limit / 1e3, f"{name}_{t}")


def build_reference(problem: DispatchProblem, *, hard_feeder_limit: bool = False) -> ReferenceModel:
    """State the community LP with PuLP (kW, kWh, EUR; see :mod:`vpp.dispatch.matrix`)."""
    feed_in = feed_in_effective(problem.prices)
    model = pulp.LpProblem(f"dispatch_{problem.community_id}", pulp.LpMinimize)
    st = _Statement(problem, ReferenceModel(model))
    all_imp: list[Vars] = []
    all_exp: list[Vars] = []
    for mi, member in enumerate(problem.members):
        imp, exp = _member(st, mi, member, feed_in)
        all_imp.append(imp)
        all_exp.append(exp)
    for t in range(problem.n_qh):
        _community(st, t, all_imp, all_exp, feed_in, hard_feeder_limit)
    model.setObjective(_expr(st.objective, st.constant))
    return st.ref


def read_reference(problem: DispatchProblem, ref: ReferenceModel) -> RawSolution:
    """Decisions per asset from the solved PuLP variables."""

    def values(vs: Vars) -> np.ndarray:
        """Solver values, clipped to the variables' bounds (solver tolerance stays inside)."""
        out = []
        for v in vs:
            value = v.varValue or 0.0
            if v.lowBound is not None:
                value = max(value, v.lowBound)
            if v.upBound is not None:
                value = min(value, v.upBound)
            out.append(value)
        return np.asarray(out, dtype=float)

    raw = RawSolution(solver_objective_eur=pulp.value(ref.model.objective))
    n = problem.n_qh
    for member in problem.members:
        m = member.member_id
        if m in ref.pv:
            total, fixed = pv_forecast_kw(member, n)
            cut = np.clip(total - values(ref.pv[m]), 0.0, None)
            curtailable = total - fixed
            share = np.divide(cut, curtailable, out=np.zeros(n), where=curtailable > 1e-12)
            for a in member.assets:
                if isinstance(a, Pv):
                    f = np.asarray(a.forecast_w, dtype=float) / 1000.0
                    raw.pv_kw[(m, a.asset_id)] = f * (1 - share) if a.curtailable else f
    for key, vs in ref.charge.items():
        raw.charge_kw[key] = values(vs)
        raw.discharge_kw[key] = values(ref.discharge[key])
    for key, vs in ref.deferrable.items():
        raw.deferrable_kw[key] = values(vs)
    return raw


def pulp_solver(name: str, time_limit_s: float, algorithm: str = "ipm") -> pulp.LpSolver:
    """PuLP's own interface: ``highs`` (``algorithm`` ipm/simplex) or ``cbc`` (barrier)."""
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, solver=algorithm, run_crossover="off")
    if name == "cbc":
        options = ["barrier"] if algorithm == "ipm" else []
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, options=options)
    raise ValueError(f"unknown solver {name!r}; use 'highs' or 'cbc'")


def solve_reference_with_pulp(ref: ReferenceModel, solver: pulp.LpSolver) -> str:
    """Solve through PuLP; returns PuLP's status word ("Optimal", "Not Solved", ...)."""
    status = ref.model.solve(solver)
    return str(pulp.LpStatus[status])


def pulp_to_highs(
    ref: ReferenceModel, options: HighsOptions
) -> tuple[highspy.Highs, list[pulp.LpVariable]]:
    """Pass the PuLP model to HiGHS in one call (instead of PuLP's row-by-row transfer)."""
    variables = ref.model.variables()
    index = {v.name: i for i, v in enumerate(variables)}
    n_col = len(variables)
    cost = np.zeros(n_col)
    for v, c in ref.model.objective.items():
        cost[index[v.name]] = c
    lower = np.array([-np.inf if v.lowBound is None else v.lowBound for v in variables], float)
    upper = np.array([np.inf if v.upBound is None else v.upBound for v in variables], float)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []
    for r, con in enumerate(ref.model.constraints.values()):
        for v, c in con.items():
            rows.append(r)
            cols.append(index[v.name])
            vals.append(c)
        lo, hi = con.getLb(), con.getUb()
        row_lo.append(-np.inf if lo is None else lo)
        row_hi.append(np.inf if hi is None else hi)
    r_arr = np.asarray(rows, dtype=np.int64)
    c_arr = np.asarray(cols, dtype=np.int64)
    order = np.lexsort((r_arr, c_arr))
    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = len(row_lo)
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = np.asarray(row_lo)
    lp.row_upper_ = np.asarray(row_hi)
    lp.offset_ = float(ref.model.objective.constant)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n_col
    lp.a_matrix_.num_row_ = len(row_lo)
    lp.a_matrix_.start_ = np.searchsorted(c_arr[order], np.arange(n_col + 1)).astype(np.int32)
    lp.a_matrix_.index_ = r_arr[order].astype(np.int32)
    lp.a_matrix_.value_ = np.asarray(vals, dtype=float)[order]
    h = new_highs(options)
    h.passModel(lp)
    return h, variables


def load_highs_values(h: highspy.Highs, variables: list[pulp.LpVariable]) -> None:
    """Write HiGHS's column values back into the PuLP variables (for :func:`read_reference`)."""
    x = h.getSolution().col_value
    for v, value in zip(variables, x, strict=True):
        v.varValue = value
