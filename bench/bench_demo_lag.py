"""Does the demo keep up with its clock? ``scripts/bench demo_lag [--seconds 60] [--speed 144]
[--broker mqtt://host:port]``

Runs the demo town (``sims/default_town.yaml``: 60 households, school, plant, 100 streetlights)
through the real service for ``--seconds`` real seconds at ``--speed`` (default 144: one
simulated day in ten minutes), without the web app, and prints per job how late its runs
started against their due time on the simulated clock (max and p99, in simulated seconds and
in real milliseconds), the runs that were coalesced or skipped (missed), and how long the
read → decide → write cycles took in real time against the poll interval. The issue's target:
no falling behind — no missed run, and every cycle shorter than the poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
from pathlib import Path

from app.demo import demo_service
from sims.town import DEFAULT_TOWN


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _group(job_id: str) -> str:
    """Jobs of the same kind in one row (the dispatch of every community, say)."""
    if job_id.startswith("dispatch:") and job_id.endswith(":start"):
        return "dispatch (at start)"
    if job_id.startswith("dispatch:"):
        return "dispatch (quarter-hour)"
    return job_id


async def run(seconds: float, speed: float, broker: str | None) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-bench-demo-"))
    db = f"sqlite+aiosqlite:///{folder / 'bench.sqlite'}"
    async with demo_service(DEFAULT_TOWN, speed, broker, db) as demo:
        service, clock = demo.service, demo.clock
        t0 = clock.now()
        await asyncio.sleep(seconds)
        t1 = clock.now()
        lateness = {k: list(v) for k, v in service.scheduler.lateness.items()}
        missed = dict(service.scheduler.missed_runs)
        cycles = list(service.cycle_real_s)
        poll_s = service.site.dispatch.poll_interval_s
        devices = len(service.site.devices)
        unavailable = (
            len(service.last_report.snapshot.unavailable) if service.last_report else devices
        )
    groups: dict[str, list[float]] = {}
    for job_id, values in lateness.items():
        groups.setdefault(_group(job_id), []).extend(values)
    missed_by_group: dict[str, int] = {}
    for job_id, n in missed.items():
        missed_by_group[_group(job_id)] = missed_by_group.get(_group(job_id), 0) + n
    print(
        f"demo town: {devices} Modbus devices, speed {speed:g}×, {seconds:g} s real = "
        f"{(t1 - t0).total_seconds() / 3600:.2f} h simulated "
        f"({t0:%H:%M}–{t1:%H:%M} UTC); devices unavailable at the end: {unavailable}"
    )
    print()
    header = f"{'job':<26}{'runs':>6}{'max late':>12}{'p99 late':>12}{'max late':>12}{'missed':>8}"
    print(header)
    print(f"{'':<26}{'':>6}{'(sim s)':>12}{'(sim s)':>12}{'(real ms)':>12}{'':>8}")
    for name in sorted(groups):
        vals = groups[name]
        print(
            f"{name:<26}{len(vals):>6}{max(vals):>12.1f}{_p99(vals):>12.1f}"
            f"{max(vals) / speed * 1000:>12.0f}{missed_by_group.get(name, 0):>8}"
        )
    poll_real_ms = poll_s / speed * 1000
    print()
    if cycles:
        print(
            f"cycles: {len(cycles)}, real duration p50 {statistics.median(cycles) * 1000:.0f} ms, "
            f"p99 {_p99(cycles) * 1000:.0f} ms, max {max(cycles) * 1000:.0f} ms; "
            f"poll interval {poll_s:g} s simulated = {poll_real_ms:.0f} ms real"
        )
    total_missed = sum(missed.values())
    keeps_up = total_missed == 0 and bool(cycles) and max(cycles) * 1000 < poll_real_ms
    print(
        "verdict: keeps up with its clock"
        if keeps_up
        else f"verdict: FALLS BEHIND ({total_missed} missed runs; longest cycle "
        f"{max(cycles, default=0) * 1000:.0f} ms against {poll_real_ms:.0f} ms)"
    )
    return keeps_up


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench demo_lag")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=144.0)
    parser.add_argument("--broker", default=None, help="mqtt://host:port (default: embedded)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.seconds, args.speed, args.broker))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
