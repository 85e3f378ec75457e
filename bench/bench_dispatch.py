"""Dispatch LP benchmark: plan time, modelling share, memory and gap to the exact optimum.

``scripts/bench dispatch [--sizes=10,100,1000,10000] [--reps=3] [--no-compare] [--no-rolling]``

Each measurement runs in a fresh child process (so peak memory is per size) on a synthetic
community (:func:`vpp.dispatch.testing.synthetic_community`: 80 % PV, half with batteries,
two in five with EVs or storage heaters, feeder limit 3 kW per member). The exact
reference is the monolithic LP (every member modelled, no aggregation) solved to optimality in
the same run; where it is too large, the gap is taken to the solver's certified dual bound.
Timings are medians over ``--reps`` repetitions (machine shared by other engineers: noisy).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

TIME_LIMIT_S = 300.0
#: beyond this size the monolithic LP does not finish in minutes (10,000 members: no optimum
#: after 900 s of dual simplex, 3.2 GB): use the decomposition with a time limit instead
DECOMPOSE_FROM = 5000
DW_TIME_LIMIT_S = 240.0


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the child process: one configuration, ``reps`` times."""
    from vpp.dispatch import Algorithm, Engine, HighsOptions, SolveOptions, solve
    from vpp.dispatch.decompose import DecompositionOptions
    from vpp.dispatch.testing import synthetic_community

    problem = synthetic_community(spec["n"], seed=spec.get("seed", 0))
    kind = spec["kind"]
    rows = []
    for _ in range(spec["reps"]):
        t0 = time.perf_counter()
        if kind.startswith("pulp-"):
            rows.append(_pulp_variant(problem, kind))
            continue
        options = SolveOptions(
            engine=Engine(spec.get("engine", "matrix")),
            highs=HighsOptions(
                Algorithm(spec.get("algorithm", "simplex")), time_limit_s=TIME_LIMIT_S
            ),
            aggregate=spec.get("aggregate", True),
            timer=time.perf_counter,
            decomposition=DecompositionOptions(
                group_size=spec.get("group_size", 20),
                gap_tol=spec.get("gap_tol", 0.005),
                time_limit_s=spec.get("dw_time_limit_s", TIME_LIMIT_S),
            ),
        )
        plan = solve(problem, options)
        total = time.perf_counter() - t0
        t = plan.timings
        rows.append(
            {
                "status": plan.status.value,
                "build_s": t.build_s or 0.0,
                "solve_s": t.solve_s or 0.0,
                "readback_s": t.readback_s or 0.0,
                "total_s": total,
                "objective": plan.objective_eur,
                "bound": plan.dual_bound_eur,
            }
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "peak_mb": rss_mb}


def _pulp_variant(problem: Any, kind: str) -> dict[str, Any]:
    from vpp.dispatch import Algorithm, HighsOptions, PlanStatus, Timings
    from vpp.dispatch.assemble import assemble_plan
    from vpp.dispatch.reference import (
        build_reference,
        load_highs_values,
        pulp_solver,
        pulp_to_highs,
        read_reference,
        solve_reference_with_pulp,
    )

    t0 = time.perf_counter()
    ref = build_reference(problem)
    t1 = time.perf_counter()
    if kind == "pulp-onecall":
        h, variables = pulp_to_highs(
            ref, HighsOptions(Algorithm.SIMPLEX, time_limit_s=TIME_LIMIT_S)
        )
        t2 = time.perf_counter()
        h.run()
        t3 = time.perf_counter()
        load_highs_values(h, variables)
        status = h.modelStatusToString(h.getModelStatus())
    else:
        solver = pulp_solver(
            "cbc" if kind == "pulp-cbc-barrier" else "highs",
            TIME_LIMIT_S,
            "ipm" if kind == "pulp-cbc-barrier" else "simplex",
        )
        t2 = time.perf_counter()
        status = solve_reference_with_pulp(ref, solver)
        t3 = time.perf_counter()
    raw = read_reference(problem, ref)
    plan = assemble_plan(problem, raw, PlanStatus.OPTIMAL, (), Timings(None, None, None))
    t4 = time.perf_counter()
    return {
        "status": status,
        # PuLP's own solve call includes the row-by-row transfer: counted as solve here
        "build_s": (t1 - t0) + (t2 - t1),
        "solve_s": t3 - t2,
        "readback_s": t4 - t3,
        "total_s": t4 - t0,
        "objective": plan.objective_eur,
        "bound": None,
    }


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_dispatch", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3 * TIME_LIMIT_S,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout)[-400:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _gap(objective: float, reference: float | None) -> str:
    if reference is None:
        return "n/a"
    return f"{100 * (objective - reference) / max(1.0, abs(reference)):.3f} %"


def _table_sizes(sizes: list[int], reps: int) -> None:
    print("#### Plan end-to-end (matrix path, inflexible members aggregated, HiGHS dual simplex)\n")
    print(
        "| members | build s | solve s | read-back s | total s | outside solver | peak MB "
        "| objective EUR | exact EUR | gap to exact | status |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        spec: dict[str, Any] = {"n": n, "kind": "plan", "reps": reps}
        if n >= DECOMPOSE_FROM:
            spec.update(reps=1, engine="decomposed", gap_tol=0.005, dw_time_limit_s=DW_TIME_LIMIT_S)
        r = _run(spec)
        if "error" in r:
            print(f"| {n} | error: {r['error']!r} |")
            continue
        rows = r["rows"]
        exact: float | None = None
        label = "exact"
        if n <= 1000:
            e = _run({"n": n, "kind": "exact", "aggregate": False, "reps": 1})
            exact = e["rows"][0]["objective"] if "rows" in e else None
        else:
            exact = rows[0]["bound"]
            label = "certified bound, Dantzig–Wolfe"
        build, solve_s, read, total = (
            _med(rows, k) for k in ("build_s", "solve_s", "readback_s", "total_s")
        )
        share = (total - solve_s) / total if total else 0.0  # everything outside the solver
        obj = _med(rows, "objective")
        ref_text = f"{exact:.2f} ({label})" if exact is not None else "n/a"
        print(
            f"| {n} | {build:.2f} | {solve_s:.2f} | {read:.2f} | {total:.2f} | {100 * share:.0f} % "
            f"| {r['peak_mb']:.0f} | {obj:.2f} | {ref_text} | {_gap(obj, exact)} "
            f"| {rows[0]['status']} |",
            flush=True,
        )
    print()


def _table_compare(n: int) -> None:
    print(f"#### Formulations and solvers at {n} members (one run each, same community)\n")
    variants = [
        ("PuLP model, PuLP's HiGHS interface (row by row) — baseline", {"kind": "pulp-highs"}),
        ("PuLP model, passed to HiGHS in one call", {"kind": "pulp-onecall"}),
        ("PuLP model, CBC barrier", {"kind": "pulp-cbc-barrier"}),
        ("matrix, monolithic, dual simplex", {"kind": "plan", "aggregate": False}),
        ("matrix, aggregated, IPM (no crossover)", {"kind": "plan", "algorithm": "ipm"}),
        ("matrix, aggregated, dual simplex (default)", {"kind": "plan"}),
        (
            "Dantzig–Wolfe, groups of 20, sampled start, gap ≤ 0.5 %",
            {"kind": "plan", "engine": "decomposed"},
        ),
    ]
    print(
        "| variant | build+transfer s | solve s | total s | objective EUR | × vs baseline "
        "| status |"
    )
    print("|---|---|---|---|---|---|---|")
    base: float | None = None
    for name, spec in variants:
        r = _run({"n": n, "reps": 1, **spec})
        if "error" in r:
            print(f"| {name} | error: {r['error']!r} |", flush=True)
            continue
        row = r["rows"][0]
        if base is None:
            base = row["total_s"]
        ratio = base / row["total_s"] if row["total_s"] else 0.0
        print(
            f"| {name} | {row['build_s']:.2f} | {row['solve_s']:.2f} | {row['total_s']:.2f} "
            f"| {row['objective']:.2f} | {ratio:.1f}× | {row['status']} |",
            flush=True,
        )
    print()


def _rolling_child(n: int, rounds: int) -> dict[str, Any]:
    from dataclasses import replace
    from datetime import timedelta

    from vpp.dispatch import Battery, Member, ModelCache, SolveOptions, rolling_round, solve
    from vpp.dispatch.testing import synthetic_community

    p = synthetic_community(n, seed=0)
    cache = ModelCache()
    warm, cold = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        plan = rolling_round(p, cache, SolveOptions(timer=time.perf_counter))
        warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        solve(p, SolveOptions(timer=time.perf_counter))
        cold.append(time.perf_counter() - t0)
        soc = {s.asset_id: s.soc_wh[0] for s in plan.assets if s.soc_wh is not None}
        members = []
        for m in p.members:
            assets = tuple(
                replace(a, soc_wh=soc[a.asset_id]) if isinstance(a, Battery) else a
                for a in m.assets
            )
            members.append(Member(m.member_id, (*m.load_w[1:], m.load_w[0]), assets))
        p = replace(p, members=tuple(members), start=p.start + timedelta(minutes=15))
    return {"warm": warm[1:], "cold": cold[1:], "warm_rounds": cache.warm_rounds}


def _table_rolling(n: int, rounds: int) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_dispatch", "--rolling-child", str(n), str(rounds)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3 * TIME_LIMIT_S,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        print(f"rolling: error {out.stderr[-400:]!r}\n")
        return
    r = json.loads(lines[-1])
    print(
        f"#### Rolling at {n} members: kept model (bounds/costs changed, warm basis) vs rebuilt\n"
    )
    print("| rounds | rebuilt, median s | kept model, median s | speed-up |")
    print("|---|---|---|---|")
    cold, warm = statistics.median(r["cold"]), statistics.median(r["warm"])
    print(f"| {len(r['warm'])} | {cold:.2f} | {warm:.2f} | {cold / warm:.1f}× |\n", flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(json.loads(argv[1]))))
        return
    if argv[:1] == ["--rolling-child"]:
        print(json.dumps(_rolling_child(int(argv[1]), int(argv[2]))))
        return
    opts = dict(a.lstrip("-").split("=", 1) if "=" in a else (a.lstrip("-"), "1") for a in argv)
    sizes = [int(s) for s in opts.get("sizes", "10,100,1000,10000").split(",")]
    reps = int(opts.get("reps", "3"))
    import pulp

    print(f"PuLP {pulp.__version__}, solvers available: {pulp.listSolvers(onlyAvailable=True)}\n")
    _table_sizes(sizes, reps)
    if "no-compare" not in opts:
        _table_compare(1000)
    if "no-rolling" not in opts:
        _table_rolling(1000, 4)


if __name__ == "__main__":
    main(sys.argv[1:])
