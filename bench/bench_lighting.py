"""Street-lighting core speed: decision tick, detection → corridor commands, year backtest.

Targets: the lighting decider of the cycle for 10,000 luminaires in 400 segments (the core's
tick plus the commands for the levels that differ from the 10,000 commands in force), p99 ≤
20 ms (issue 12); the core's tick alone ≤ 50 ms (issue 6); a year's backtest of one segment ≤
5 s. The detection → commands figure is the pure part of the broker latency
target (p99 ≤ 50 ms at 100 detections/s over MQTT). Each case is measured against a baseline
in the same run:

* tick: the same decisions computed luminaire by luminaire (no sharing per segment);
* detection: running a full tick instead of the corridor fast path;
* backtest: the program-only year preview (no traffic replay).

Flags: ``--quick`` for fewer repetitions.
"""

from __future__ import annotations

import gc
import io
import math
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from kernel.commands import CommandKind
from lighting.backtest import backtest, parse_traffic_csv
from lighting.examples import PROGRAMS, example_grid
from lighting.forecast import lighting_load_forecast
from lighting.overrides import Override, Scope
from lighting.presence import Detection, PresenceHold, apply_detection
from lighting.preview import preview_year
from lighting.schedule import resolve_segment_night
from lighting.site import LightingIndex
from lighting.tick import LuminaireDecision, decide_segment, decide_tick
from lighting.traffic import TrafficSample, TrafficState
from scheduler.lighting.config import LightingServiceConfig
from scheduler.lighting.decider import LightingDecider, LightingState
from scheduler.snapshot import LightingInputs, Snapshot


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def ms(s: float) -> str:
    return f"{s * 1000:.2f} ms"


def decider_cycles(
    index: LightingIndex,
    traffic: dict[str, TrafficState],
    samples: dict[str, TrafficSample],
    holds: dict[str, PresenceHold],
    overrides: list[Override],
    now: datetime,
    n: int,
) -> tuple[list[float], int]:
    """``n`` cycles of the decider as the service runs it, one a minute from ``now``: the
    snapshot holds the traffic samples and the 10,000 commands in force of the cycle before
    (the first cycle commands every luminaire and is not measured)."""
    from lighting.config import LightingSite

    site = LightingSite(index=index, programs=PROGRAMS, co2_g_per_kwh=380.0)
    decider = LightingDecider(LightingState(site, holds, tuple(overrides)), LightingServiceConfig())
    inputs = LightingInputs(traffic=samples)
    first = decider.decide(Snapshot.build(now, [], lighting=inputs))
    dim = {c.target: c for c in first}
    in_force = {CommandKind.DIM_LEVEL_PCT: dim}
    gc.collect()
    gc.freeze()  # as the service does once it has started (app.heap.freeze_startup_heap)
    out: list[float] = []
    decided = 0
    for k in range(1, n + 1):
        snap = Snapshot.build(now + timedelta(minutes=k), [], lighting=inputs, in_force=in_force)
        t0 = time.perf_counter()
        cmds = decider.decide(snap)
        out.append(time.perf_counter() - t0)
        decided += len(cmds)
        dim.update({c.target: c for c in cmds})
    return out, decided


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    rng = random.Random(6)
    index = example_grid(400, 25)  # 10,000 luminaires, 100 streets of 4 segments
    night = date(2026, 1, 14)
    nights = {sid: resolve_segment_night(s, PROGRAMS, night) for sid, s in index.segments.items()}
    now = datetime(2026, 1, 14, 23, 0, tzinfo=UTC)

    # a realistic tick: fresh samples everywhere, ~50 active corridors, a few overrides
    traffic: dict[str, TrafficState] = {}
    for k in range(3):
        t = now - timedelta(minutes=30 - 10 * k)
        samples = {sid: TrafficSample(t, rng.randint(0, 60)) for sid in index.segments}
        traffic = decide_tick(index, nights, traffic, samples, {}, [], t).traffic
    samples = {sid: TrafficSample(now, rng.randint(0, 60)) for sid in index.segments}
    holds: dict[str, PresenceHold] = {}
    for _ in range(50):
        street = f"street-{rng.randrange(100)}"
        det = Detection(street, rng.randrange(100), now - timedelta(seconds=20), 1)
        holds, _ = apply_detection(index, holds, det)
    overrides = [
        Override(
            "maint",
            Scope.SEGMENT,
            "seg-7",
            100.0,
            now - timedelta(hours=1),
            now + timedelta(hours=1),
        ),
        Override(
            "lamp",
            Scope.LUMINAIRE,
            "lum-9-3",
            0.0,
            now - timedelta(hours=1),
            now + timedelta(hours=1),
        ),
    ]

    def tick() -> object:
        return decide_tick(index, nights, traffic, samples, holds, overrides, now)

    def naive_tick() -> object:
        out = {}
        for sid, seg in index.segments.items():
            for lum in index.by_segment[sid]:
                out[lum.luminaire_id] = decide_segment(
                    seg, nights[sid], traffic.get(sid), samples.get(sid), now
                )
        return out

    reps = 5 if quick else 21
    tick_s = timed(tick, reps)
    decider_s, decided = decider_cycles(index, traffic, samples, holds, overrides, now, reps * 5)
    naive_s = timed(naive_tick, max(3, reps // 4))
    result = decide_tick(index, nights, traffic, samples, holds, overrides, now)
    assert len(result.decisions) == 10_000
    last: dict[str, LuminaireDecision] = result.decisions

    # detection → corridor commands (pure part), 100 detections/s worth of work
    dets = [
        Detection(
            f"street-{rng.randrange(100)}",
            rng.randrange(100),
            now + timedelta(seconds=i / 100),
            rng.choice((-1, 0, 1)),
        )
        for i in range(200 if quick else 1000)
    ]
    det_s: list[float] = []
    cmd_counts = []
    live = dict(holds)
    for d in dets:
        t0 = time.perf_counter()
        live, cmds = apply_detection(index, live, d, last)
        det_s.append(time.perf_counter() - t0)
        cmd_counts.append(len(cmds))
    full_tick_s = tick_s  # the alternative: wait for and run a full tick

    # year backtest of one segment against 10-minute counts
    one = example_grid(1, 25)
    seg = one.segments["seg-0"]
    lums = one.by_segment["seg-0"]
    buf = io.StringIO()
    buf.write("ts,segment_id,count\n")
    t = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    while t < datetime(2027, 1, 1, 12, 0, tzinfo=UTC):
        hour = (t.hour + 1) % 24
        mean = 60 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 3) / 24))
        count = "" if rng.random() < 0.002 else str(max(0, int(rng.gauss(mean, 5))))
        buf.write(f"{t.isoformat()},seg-0,{count}\n")
        t += timedelta(minutes=10)
    text = buf.getvalue()
    parse_s = timed(lambda: parse_traffic_csv(io.StringIO(text)), 1 if quick else 3)
    records = parse_traffic_csv(io.StringIO(text))
    year_reps = 1 if quick else 3

    def year() -> object:
        return backtest(seg, lums, PROGRAMS, records, date(2026, 1, 1), date(2026, 12, 31))

    bt_s = timed(year, year_reps)
    pv_s = timed(lambda: preview_year(seg, lums, PROGRAMS, 2026), year_reps)
    bt = backtest(seg, lums, PROGRAMS, records, date(2026, 1, 1), date(2026, 12, 31))
    fc_s = timed(
        lambda: lighting_load_forecast(index, PROGRAMS, date(2026, 1, 15)), 1 if quick else 3
    )

    print("| case | runs | median | p99 / max | target | baseline (median) | baseline ÷ case |")
    print("|---|---:|---:|---:|---:|---|---:|")
    tm = statistics.median(tick_s)
    nm = statistics.median(naive_s)
    print(
        f"| decision tick, 10,000 luminaires / 400 segments | {len(tick_s)} | {ms(tm)} | "
        f"{ms(max(tick_s))} | ≤ 50 ms | per-luminaire decisions {ms(nm)} | {nm / tm:.1f}× |"
    )
    dcm = statistics.median(decider_s)
    print(
        f"| lighting decider in the cycle, 10,000 luminaires ({decided} commands) | "
        f"{len(decider_s)} | {ms(dcm)} | p99 {ms(p(decider_s, 0.99))} | p99 ≤ 20 ms | "
        f"per-luminaire decisions {ms(nm)} | {nm / dcm:.1f}× |"
    )
    dm = statistics.median(det_s)
    fm = statistics.median(full_tick_s)
    print(
        f"| detection → corridor commands (pure) | {len(det_s)} | {dm * 1e6:.0f} µs | "
        f"p99 {p(det_s, 0.99) * 1e6:.0f} µs | (broker p99 ≤ 50 ms) | full tick {ms(fm)} | "
        f"{fm / dm:.0f}× |"
    )
    bm, pm = statistics.median(bt_s), statistics.median(pv_s)
    print(
        f"| year backtest, 1 segment (25 luminaires, 52,560 counts) | {len(bt_s)} | {bm:.2f} s | "
        f"{max(bt_s):.2f} s | ≤ 5 s | program-only year preview {pm:.2f} s | {pm / bm:.2f}× |"
    )
    for label, runs in (
        ("traffic CSV parse, one year", parse_s),
        ("load forecast, 400 segments, one day", fc_s),
    ):
        print(
            f"| {label} | {len(runs)} | {ms(statistics.median(runs))} | {ms(max(runs))} "
            "| – | – | – |"
        )
    print()
    print(
        f"corridor commands per detection: mean {statistics.mean(cmd_counts):.1f}; "
        f"backtest: {bt.energy_wh / 1000:.1f} kWh adaptive, {bt.program_only_wh / 1000:.1f} kWh "
        f"program only, {bt.baseline_wh / 1000:.1f} kWh full light → savings {bt.savings_pct:.1f} %"
    )
