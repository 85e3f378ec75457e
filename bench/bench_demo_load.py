"""The demo town on a busy machine: does it keep answering, planning and lighting, or say why?

``scripts/bench demo_load [--seconds 300] [--quiet-seconds 90] [--burners 2] [--speed 144]``

Runs the demo town (``sims/default_town.yaml``: 146 Modbus devices, 100 streetlights) through
the real service twice: first on the quiet machine (the baseline, ``--quiet-seconds``), then
with ``--burners`` processes spinning a CPU each beside it (``--seconds``; on the 2-core
machine that is load 2 + the demo's own). Every 5 real seconds it samples what an operator
would see and prints, per phase:

* devices answering in the newest cycle (median and minimum of the samples, of 146);
* the quarter-hours that passed: planned (a plan made for that quarter-hour) or marked stale
  (the readout says so, :mod:`app.demo.readout`) — a quarter-hour neither planned nor marked
  would be a silent failure, and is counted as such;
* luminaire-minutes in which the lamps followed their command (reported level = commanded
  level after the ramp; lamps still ramping are left out);
* the clock: its lowest speed and what the readout said about it.

The issue's target under load: median devices answering ≥ 140 of 146, every quarter-hour
planned or marked stale, lights following in ≥ 95 % of luminaire-minutes — or the clock
visibly slowed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from app.demo import Demo, demo_service
from app.demo.readout import streets_now
from kernel.quarterhours import QH, floor_qh
from sims.town import DEFAULT_TOWN

SAMPLE_S = 5.0


def _burn() -> None:
    while True:  # one core, until terminated
        pass


@dataclass
class Phase:
    name: str
    devices: int = 0
    answering: list[int] = field(default_factory=list)
    following_min: float = 0.0
    differing_min: float = 0.0
    speeds: list[float] = field(default_factory=list)
    slowed: set[str] = field(default_factory=set)
    qh_planned: int = 0
    qh_stale: int = 0
    qh_silent: int = 0
    sim_minutes: float = 0.0

    def row(self) -> str:
        med = statistics.median(self.answering) if self.answering else 0
        low = min(self.answering, default=0)
        judged = self.following_min + self.differing_min
        follow = 100.0 * self.following_min / judged if judged else float("nan")
        qhs = self.qh_planned + self.qh_stale + self.qh_silent
        return (
            f"| {self.name} | {self.sim_minutes:.0f} | {med:.0f} / {low} of {self.devices} | "
            f"{self.qh_planned} + {self.qh_stale} stale of {qhs} ({self.qh_silent} silent) | "
            f"{follow:.1f} % | {min(self.speeds, default=0):.3g}× | "
            f"{'; '.join(sorted(self.slowed)) or '—'} |"
        )


async def sample(phase: Phase, seconds: float, demo: Demo) -> None:
    """Sample the running demo for ``seconds`` real seconds into ``phase``."""
    service, clock, pace = demo.service, demo.clock, demo.pace
    phase.devices = len(service.site.devices)
    start = clock.now()
    last_at = start
    seen_qh: dict[datetime, str] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await asyncio.sleep(SAMPLE_S)
        now = clock.now()
        step_min = (now - last_at).total_seconds() / 60.0
        last_at = now
        report = service.last_report
        if report is not None:
            phase.answering.append(phase.devices - len(report.snapshot.unavailable))
        for s in streets_now(service):
            phase.following_min += s.following * step_min
            phase.differing_min += s.differing * step_min
        phase.speeds.append(clock.speed)
        if pace.slowed:
            phase.slowed.add(pace.slowed.split(" (")[0])
        qh = floor_qh(now)
        for plan in service.jobs.plans.values():
            if plan.start >= qh:
                seen_qh[qh] = "planned"
            elif seen_qh.get(qh) != "planned" and plan.start < qh - QH:
                seen_qh[qh] = "stale"  # the readout marks it (STALE)
    phase.sim_minutes = (clock.now() - start).total_seconds() / 60.0
    current = floor_qh(clock.now())
    for qh, what in seen_qh.items():
        if qh == current:
            continue  # still running
        if what == "planned":
            phase.qh_planned += 1
        else:
            phase.qh_stale += 1
    # a quarter-hour that passed without a plan made for it and was never marked
    first = floor_qh(start) + QH
    q = first
    while q < current:
        if q not in seen_qh:
            phase.qh_silent += 1
        q += QH


async def run(seconds: float, quiet_s: float, burners: int, speed: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-bench-load-"))
    db = f"sqlite+aiosqlite:///{folder / 'bench.sqlite'}"
    quiet, loaded = Phase("quiet"), Phase(f"{burners} CPU burners")
    async with demo_service(DEFAULT_TOWN, speed, None, db) as demo:
        await asyncio.sleep(20)  # start-up: discovery, first plan, first lamp levels
        await sample(quiet, quiet_s, demo)
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_burn, daemon=True) for _ in range(burners)]
        for p in procs:
            p.start()
        try:
            await sample(loaded, seconds, demo)
        finally:
            for p in procs:
                p.terminate()
                p.join(5)
    print(
        f"demo town at {speed:g}× asked for; samples every {SAMPLE_S:g} s real; "
        f"quiet {quiet_s:g} s, loaded {seconds:g} s\n"
    )
    print(
        "| phase | simulated min | devices answering (median / min) | quarter-hours planned "
        "+ marked stale (silent) | lamps following (luminaire-minutes) | lowest speed | "
        "what the readout said |"
    )
    print("|---|---:|---|---|---:|---:|---|")
    print(quiet.row())
    print(loaded.row())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench demo_load")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--quiet-seconds", type=float, default=90.0)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--speed", type=float, default=144.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.seconds, args.quiet_seconds, args.burners, args.speed))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
