"""How much CPU does the running demo town cost? (a measurement, not a test)

::

    .venv/bin/python -m sims.cpu_town [--town sims/default_town.yaml] [--seconds 30]
                                      [--speed 144] [--broker mqtt://127.0.0.1:1883]

Starts the town (every Modbus gateway, the streetlights, the traffic sensors) on a simulated
clock at demo speed, in this process. A second process plays the controller: it opens every
device of the town's site document through the production drivers and reads all of them once
per ``poll_interval_s`` of simulated time (the site's dispatch setting: 60 s, i.e. every
0.42 s of real time at 144×). After a warm-up it measures for ``--seconds``:

* the CPU time of the town's process (user + system, all threads) as % of one core;
* the event loop's lag (how late a 50 ms sleep wakes up), mean and worst;
* the controller's reads: devices read, readings unavailable (a town that falls behind makes
  the controller time out), and its own CPU for comparison.

Without ``--broker`` an embedded amqtt broker is started (its CPU counts for this process
too: the figure is then an upper bound).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from kernel.clock import SimClock
from kernel.readings import Quality
from protocols.modbus.connection import ModbusPool
from protocols.modbus.factory import open_device
from protocols.mqtt.embedded import EmbeddedBroker
from sims.demo_site import DISPATCH, demo_site_data
from sims.town import DEFAULT_TOWN, SimTown, TownConfig, load_town


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _controller(devices: list[dict[str, Any]], interval_s: float, seconds: float) -> None:
    """The child: read every device every ``interval_s`` real seconds for ``seconds``."""
    from kernel.clock import RealClock

    clock = RealClock()
    async with ModbusPool(timeout_s=1.0) as pool:
        drivers = []
        for d in devices:
            for attempt in range(20):
                try:
                    drivers.append(
                        await open_device(
                            d["name"], d["driver"], d["host"], d["port"], d["unit_id"], pool, clock
                        )
                    )
                    break
                except Exception:
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.1)
        print("ready", flush=True)
        cycles = reads = unavailable = 0
        late = 0
        cpu0 = _cpu_s()
        t0 = time.monotonic()
        next_at = t0
        while time.monotonic() - t0 < seconds:
            results = await asyncio.gather(*(drv.read() for drv in drivers))
            cycles += 1
            for readings in results:
                reads += 1
                unavailable += all(r.quality is Quality.UNAVAILABLE for r in readings)
            next_at += interval_s
            delay = next_at - time.monotonic()
            if delay < 0:
                late += 1
                next_at = time.monotonic()
            await asyncio.sleep(max(0.0, delay))
        cpu = _cpu_s() - cpu0
        wall = time.monotonic() - t0
    stats = {
        "cycles": cycles,
        "device_reads": reads,
        "devices_unavailable": unavailable,
        "late_cycles": late,
        "cpu_pct": 100.0 * cpu / wall,
    }
    print(json.dumps(stats), flush=True)


async def _lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.05)
        samples.append(loop.time() - t - 0.05)


@contextmanager
def _broker(url: str | None) -> Iterator[tuple[str, int]]:
    """Host and port of the broker at ``url`` (``mqtt://host:port``), or of an embedded
    amqtt broker that runs while the block does."""
    if url:
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 1883
        return
    with EmbeddedBroker() as embedded:
        yield embedded.host, embedded.port


async def _start_controller(
    devices: list[dict[str, Any]], interval_s: float, seconds: float
) -> asyncio.subprocess.Process:
    """The controller process (``--controller``) reading ``devices`` every ``interval_s`` real
    seconds for ``seconds``; returns once it has opened them all."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sims.cpu_town",
        "--controller",
        str(interval_s),
        str(seconds),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(json.dumps(devices).encode())
    child.stdin.close()
    ready = await asyncio.wait_for(child.stdout.readline(), 120)
    if ready.strip() != b"ready":
        raise RuntimeError(f"controller did not start: {ready!r}")
    return child


@dataclass(frozen=True)
class _TownLoad:
    """What the town's process cost over ``wall_s`` real seconds (``sim_s`` simulated): CPU
    seconds, and the event loop's lag samples in seconds."""

    cpu_s: float
    wall_s: float
    sim_s: float
    lag_s: list[float]


async def _measure_town(clock: SimClock, seconds: float) -> _TownLoad:
    """CPU and loop lag of this process over the next ``seconds`` real seconds."""
    lag: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_lag_probe(lag, stop))
    cpu0, t0, sim0 = _cpu_s(), time.monotonic(), clock.now()
    await asyncio.sleep(seconds)
    cpu, wall, sim_s = (
        _cpu_s() - cpu0,
        time.monotonic() - t0,
        (clock.now() - sim0).total_seconds(),
    )
    stop.set()
    await probe
    return _TownLoad(cpu, wall, sim_s, lag)


async def measure(
    town_path: Path, seconds: float, speed: float, broker: str | None, start: dt_time
) -> None:
    town = load_town(town_path)
    zone = ZoneInfo(town.timezone)
    today = datetime.now(zone).date()
    clock = SimClock(datetime.combine(today, start, zone), speed)
    with _broker(broker) as (host, port):
        async with SimTown(town, clock, host, port) as sim:
            site = demo_site_data(town, sim.modbus.endpoints)
            interval = DISPATCH["poll_interval_s"] / speed
            child = await _start_controller(site["devices"], interval, seconds + 10.0)
            await asyncio.sleep(3.0)  # warm-up: first reads, caches, discovery
            load = await _measure_town(clock, seconds)
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            await child.wait()  # it reads for a few seconds beyond the measurement
    _report(town, sim, site["devices"], json.loads(line), load, speed, start, broker)


def _report(
    town: TownConfig,
    sim: SimTown,
    devices: list[dict[str, Any]],
    ctl: dict[str, Any],
    load: _TownLoad,
    speed: float,
    start: dt_time,
    broker: str | None,
) -> None:
    """Print the town, the setup and the figures (the town's and the controller's)."""
    n_modbus = len(devices)
    interval = DISPATCH["poll_interval_s"] / speed
    cpu, wall, sim_s, lag = load.cpu_s, load.wall_s, load.sim_s, load.lag_s
    print(f"town {town.name}: {len(town.households)} households, {len(town.buildings)} buildings,")
    print(
        f"  {len(town.plants)} plants, {n_modbus} Modbus devices on "
        f"{len({d['port'] for d in devices})} gateways, {len(sim.light_ids)} streetlights, "
        f"{len(sim.sensors)} traffic sensors; speed {speed:g}× ({sim_s / 3600:.2f} simulated h "
        f"in {wall:.1f} s)"
    )
    what = broker or "embedded amqtt (its CPU is counted in the town)"
    print(f"  start {start:%H:%M} local; broker: {what}; CPUs: {os.cpu_count()}")
    print(f"town process CPU: {100.0 * cpu / wall:.1f} % of one core over {wall:.1f} s")
    print(
        f"event loop lag (50 ms sleeps): mean {1000 * sum(lag) / len(lag):.1f} ms, "
        f"worst {1000 * max(lag):.1f} ms"
    )
    print(
        f"controller: {ctl['cycles']} cycles of {n_modbus} devices every {interval:.2f} s, "
        f"{ctl['device_reads']} device reads, {ctl['devices_unavailable']} unavailable, "
        f"{ctl['late_cycles']} late cycles, its CPU {ctl['cpu_pct']:.1f} %"
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--controller"]:
        devices = json.loads(sys.stdin.read())
        asyncio.run(_controller(devices, float(args[1]), float(args[2])))
        return
    parser = argparse.ArgumentParser(prog="python -m sims.cpu_town", description=__doc__)
    parser.add_argument("--town", type=Path, default=DEFAULT_TOWN)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--speed", type=float, default=144.0)
    parser.add_argument("--broker", default=None, help="mqtt://host:port (default: embedded)")
    parser.add_argument(
        "--start",
        default="17:30",
        help="local time of today to start at (HH:MM; evening: cars arrive, lights on, PV fading)",
    )
    ns = parser.parse_args(args)
    start = dt_time.fromisoformat(ns.start)
    asyncio.run(measure(ns.town, ns.seconds, ns.speed, ns.broker, start))


if __name__ == "__main__":
    main()
