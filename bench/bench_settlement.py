"""Settlement of 1,000 members × one year of quarter-hours (35 million member-intervals).

Two keys: the AT dynamic key and the §42c contract key (static shares) with re-offer. Each is
settled by the exact array path every settlement run takes
(:func:`vpp.settlement.allocate.allocate_bulk`, under :func:`vpp.settlement.settle.settle_lines`:
int64 Wh, largest remainder, producer side) and by a bare float numpy computation of the same
allocation (no exactness, whole arrays) in the same run. Every measurement runs in a fresh
child process so that its peak RSS (``resource.getrusage``) is its own; the table shows medians
over the repetitions, the ratio exact/float, and checks of the exact result (conservation and
caps hold for every quarter-hour; largest deviation from the float allocation in Wh).

    scripts/bench settlement [--reps=3] [--members=1000] [--quarter-hours=35040]
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from vpp.settlement.allocate import allocate_bulk
from vpp.settlement.keys import SharingKey, contract_key, dynamic_key

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
PRODUCER_SHARE = 10  # every tenth member has PV


def _inputs(
    members: int, quarter_hours: int, seed: int = 42, *, always_short: bool = False
) -> tuple[I64, I64]:
    """Household consumption (Wh/qh) with a daily shape; PV on every tenth member.

    With ``always_short`` the producers feed in day and night at a level below ΣC, so that
    every quarter-hour needs the full remainder computation (the worst case of the exact path;
    with real PV about half the year's quarter-hours are dark and some are fully covered).
    """
    rng = np.random.default_rng(seed)
    qh_of_day = np.arange(quarter_hours) % 96
    day = np.arange(quarter_hours) // 96
    evening = 1.0 + 0.8 * np.exp(-(((qh_of_day - 76) / 10.0) ** 2))
    consumption = np.empty((quarter_hours, members), dtype=np.int64)
    generation = np.zeros((quarter_hours, members), dtype=np.int64)
    season = 0.55 + 0.45 * np.sin(2 * np.pi * (day - 80) / 365)
    sun = np.clip(np.sin(np.pi * (qh_of_day - 24) / 48), 0, None) * season
    if always_short:
        sun = np.full(quarter_hours, 0.3)
    producers = np.arange(0, members, PRODUCER_SHARE)
    step = 4096
    for lo in range(0, quarter_hours, step):
        hi = min(quarter_hours, lo + step)
        base = rng.integers(0, 160, (hi - lo, members))
        consumption[lo:hi] = (base * evening[lo:hi, None]).astype(np.int64)
        peak = rng.integers(1_000, 2_500, (hi - lo, producers.size))
        generation[lo:hi, producers] = (peak * sun[lo:hi, None]).astype(np.int64)
    return consumption, generation


def _key(kind: str, members: int) -> SharingKey:
    if kind.startswith("dynamic"):
        return dynamic_key()
    ids = [f"m{i:05d}" for i in range(members)]
    return contract_key({m: Fraction(1, members) for m in ids}, reoffer=True)


def _float_dynamic(c: I64, g: I64) -> tuple[F64, F64]:
    gen = g.sum(axis=1)
    con = c.sum(axis=1)
    a = c * np.minimum(1.0, gen / np.maximum(con, 1))[:, None]
    d = g * np.minimum(1.0, con / np.maximum(gen, 1))[:, None]
    return a, d


def _float_reoffer(c: I64, g: I64) -> tuple[F64, F64]:
    n = c.shape[1]
    k = np.full(n, 1.0 / n)
    gen = g.sum(axis=1).astype(np.float64)
    a = np.minimum(c, k[None, :] * gen[:, None])
    for _ in range(n):
        rest = gen - a.sum(axis=1)
        unmet = c - a
        active = np.where(unmet > 1e-9, k, 0.0)
        weight = active.sum(axis=1)
        offer = active * (rest / np.where(weight > 0, weight, 1.0))[:, None]
        take = np.minimum(offer, unmet)
        a += take
        if take.sum() < 1e-6:
            break
    given = a.sum(axis=1)
    d = g * (given / np.maximum(gen, 1))[:, None]
    return a, d


def _child(kind: str, impl: str, members: int, quarter_hours: int) -> None:
    c, g = _inputs(members, quarter_hours, always_short=kind == "dynamic-short")
    gen_total = g.sum(axis=1)
    con_total = c.sum(axis=1)
    hard_share = float(((gen_total > 0) & (gen_total < con_total)).mean())
    del gen_total, con_total
    ids = [f"m{i:05d}" for i in range(members)]
    key = _key(kind, members)
    t0, cpu0 = time.perf_counter(), time.process_time()
    if impl == "exact":
        result = allocate_bulk(key, ids, c, g)
    else:
        fa, _ = _float_dynamic(c, g) if kind.startswith("dynamic") else _float_reoffer(c, g)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report: dict[str, object] = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mb": peak_mb,
        "hard": hard_share,
    }
    if impl == "exact":
        a = result.allocated_wh
        gen = g.sum(axis=1)
        report["conserved"] = bool(
            (a.sum(axis=1) + result.surplus_wh == gen).all()
            and (result.delivered_wh.sum(axis=1) == a.sum(axis=1)).all()
        )
        report["capped"] = bool(((a >= 0) & (a <= c)).all())
        del result
        fa, _ = _float_dynamic(c, g) if kind.startswith("dynamic") else _float_reoffer(c, g)
        report["max_dev_wh"] = float(np.abs(a - fa).max())
    sys.stdout.write(json.dumps(report) + "\n")


def _run_child(kind: str, impl: str, members: int, quarter_hours: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_settlement",
            "--child",
            kind,
            impl,
            str(members),
            str(quarter_hours),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed


def _flag(argv: list[str], name: str, default: int) -> int:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return int(arg.split("=", 1)[1])
    return default


def main(argv: list[str]) -> None:
    reps = _flag(argv, "reps", 3)
    members = _flag(argv, "members", 1000)
    quarter_hours = _flag(argv, "quarter-hours", 35_040)
    print(
        f"{members} members × {quarter_hours} quarter-hours = "
        f"{members * quarter_hours / 1e6:.1f} M member-intervals; {reps} runs each, medians\n"
    )
    print(
        "| key | exact s | float numpy s | exact / float | CPU-time ratio | exact peak RSS MB "
        "| float peak RSS MB | Σ conserved | caps hold | max |exact−float| Wh "
        "| qh with 0<G<ΣC |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cases = (
        ("dynamic", "AT dynamic (PV profile)"),
        ("dynamic-short", "AT dynamic (0<G<ΣC always)"),
        ("reoffer", "§42c static + re-offer (PV profile)"),
    )
    for kind, label in cases:
        exact, flt = [], []
        for _ in range(reps):  # interleaved, so that background load hits both alike
            exact.append(_run_child(kind, "exact", members, quarter_hours))
            flt.append(_run_child(kind, "float", members, quarter_hours))
        e_s = statistics.median(r["seconds"] for r in exact)
        f_s = statistics.median(r["seconds"] for r in flt)
        e_cpu = statistics.median(r["cpu_seconds"] for r in exact)
        f_cpu = statistics.median(r["cpu_seconds"] for r in flt)
        print(
            f"| {label} | {e_s:.2f} | {f_s:.2f} | {e_s / f_s:.2f}× | {e_cpu / f_cpu:.2f}× "
            f"| {max(r['peak_mb'] for r in exact):.0f} | {max(r['peak_mb'] for r in flt):.0f} "
            f"| {all(r['conserved'] for r in exact)} | {all(r['capped'] for r in exact)} "
            f"| {max(r['max_dev_wh'] for r in exact):.3f} | {exact[0]['hard']:.0%} |",
            flush=True,
        )
    print(
        "\nPeak RSS includes the inputs (two int64 arrays of 280 MB each at full size) and "
        "the outputs; `exact s` is allocation, remainders and producer side. Times are wall-clock "
        "medians; the CPU-time ratio (medians of process CPU time) is less disturbed by other "
        "processes on a shared machine."
    )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main(sys.argv[1:])
