"""Poll 1,000 simulated SunSpec inverters and compare with a bare pymodbus read loop.

Setup: ``--gateways`` gateway ports × (``--devices`` / gateways) unit ids each, every unit a
simulated SunSpec inverter (models 1, 103, 120, 123). The simulators run in
``--server-procs`` separate processes, so the client measured here does not share its event
loop with them.

Measured, in the same run and against the same servers:

* **cycle** -- the production read path of the service's cycle:
  :func:`scheduler.reading.read_gateways` over the devices grouped by gateway connection as
  ``SiteDevices.gateways()`` groups them (one task per gateway, its units in turn, each
  unit's ``SunSpecInverter.read()`` with its real-time budget: block reads, decoding,
  canonical readings with quality);
* **bare** -- one ``AsyncModbusTcpClient`` per gateway, the same register blocks for the same
  unit ids with the same concurrency (gateways in parallel, units in turn), no decoding.

Ratio = bare / cycle (1.0: decoding costs nothing; target ≥ 0.8). Medians of ``--reps``.

Flags: ``--devices=1000 --gateways=10 --reps=15 --server-procs=2``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

TARGET_CYCLE_S = 0.25
TARGET_RATIO = 0.8


def _flag(argv: list[str], name: str, default: int) -> int:
    for a in argv:
        if a.startswith(f"--{name}="):
            return int(a.split("=", 1)[1])
    return default


# --------------------------------------------------------------------------- servers


async def _serve(gateways: list[int], units: int, pipe: Connection) -> None:
    from kernel.clock import RealClock
    from sims.modbus.inverter import SunSpecInverterSim
    from sims.modbus.server import GatewayServer
    from sims.profiles import ClearSkyPv

    clock = RealClock()
    pv = ClearSkyPv(kwp=10.0)  # one curve shared by all: same site
    servers = []
    for g in gateways:
        sims = {
            u: SunSpecInverterSim(clock, rated_w=10_000.0, pv=pv, cloud_seed=g * 1000 + u)
            for u in range(1, units + 1)
        }
        gw = GatewayServer(dict(sims))
        await gw.start()
        servers.append(gw)
    pipe.send([(gw.host, gw.port) for gw in servers])
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # wait for "stop"
    for gw in servers:
        await gw.stop()


def _server_main(gateways: list[int], units: int, pipe: Connection) -> None:
    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(_serve(gateways, units, pipe))


# --------------------------------------------------------------------------- client


async def _measure(endpoints: list[tuple[str, int]], units: int, reps: int) -> dict[str, Any]:
    from pymodbus.client import AsyncModbusTcpClient

    from kernel.clock import RealClock
    from protocols.modbus.connection import ModbusPool
    from protocols.sunspec.device import SunSpecInverter, open_sunspec
    from scheduler.reading import Gateway, read_gateways

    clock = RealClock()
    async with ModbusPool(timeout_s=10.0) as pool:
        gateways: list[Gateway] = []
        for gi, (host, port) in enumerate(endpoints):
            conn = pool.connection(host, port)
            found = await asyncio.gather(
                *(open_sunspec(f"gw{gi}-u{u}", conn, u, clock) for u in range(1, units + 1))
            )
            inverters = [d for d in found if isinstance(d, SunSpecInverter)]
            gateways.append(Gateway(conn.name, inverters))
        devices = [d for g in gateways for d in g.devices]
        assert len(devices) == len(endpoints) * units
        first = gateways[0].devices[0]
        assert isinstance(first, SunSpecInverter)
        blocks = first.blocks  # the same map on every simulated unit

        async def cycle() -> float:
            t0 = time.perf_counter()
            result = await read_gateways(gateways, timeout_s=10.0)
            elapsed = time.perf_counter() - t0
            polled = {r.device_id for r in result.readings}
            if len(polled) != len(devices) or result.unavailable:
                raise RuntimeError(
                    f"{len(polled)} of {len(devices)} devices read, "
                    f"{len(result.unavailable)} unavailable during the benchmark"
                )
            return elapsed

        clients = []
        for host, port in endpoints:
            c = AsyncModbusTcpClient(host, port=port, timeout=10.0, retries=0)
            await c.connect()
            clients.append(c)

        async def bare_gateway(client: AsyncModbusTcpClient) -> None:
            for u in range(1, units + 1):
                for b in blocks:
                    rr = await client.read_holding_registers(b.address, count=b.count, device_id=u)
                    if rr.isError():
                        raise RuntimeError(f"bare read failed: {rr}")

        async def bare() -> float:
            t0 = time.perf_counter()
            await asyncio.gather(*(bare_gateway(c) for c in clients))
            return time.perf_counter() - t0

        await cycle()  # warm-up
        await bare()
        cycles: list[float] = []
        bares: list[float] = []
        for _ in range(reps):  # interleaved, so both see the same machine load
            cycles.append(await cycle())
            bares.append(await bare())
        for c in clients:
            c.close()
        return {
            "devices": len(devices),
            "blocks_per_device": len(blocks),
            "registers_per_device": sum(b.count for b in blocks),
            "cycle": cycles,
            "bare": bares,
        }


def main(argv: list[str]) -> None:
    n_devices = _flag(argv, "devices", 1000)
    n_gateways = _flag(argv, "gateways", 10)
    reps = _flag(argv, "reps", 15)
    procs = max(1, min(_flag(argv, "server-procs", 2), n_gateways))
    units = n_devices // n_gateways
    if not 1 <= units <= 247:
        raise SystemExit(f"{units} unit ids per gateway: must be 1..247")

    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    ctx = mp.get_context("spawn")
    workers = []
    endpoints: list[tuple[str, int]] = []
    for p in range(procs):
        mine = list(range(p, n_gateways, procs))
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_server_main, args=(mine, units, child), daemon=True)
        proc.start()
        workers.append((proc, parent))
    try:
        for _, parent in workers:
            endpoints.extend(parent.recv())
        result = asyncio.run(_measure(endpoints, units, reps))
    finally:
        for proc, parent in workers:
            parent.send("stop")
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()

    cycle_s = statistics.median(result["cycle"])
    bare_s = statistics.median(result["bare"])
    ratio = bare_s / cycle_s
    met = cycle_s <= TARGET_CYCLE_S and ratio >= TARGET_RATIO
    print(
        f"server processes: {procs}; per device {result['blocks_per_device']} block read(s), "
        f"{result['registers_per_device']} registers; {reps} repetitions, medians\n"
    )
    print(
        "| devices | gateways | cycle s (median) | bare loop s (median) | ratio bare/cycle "
        "| target (≤ 0.25 s, ≥ 0.8) met |"
    )
    print("|---:|---:|---:|---:|---:|:---:|")
    print(
        f"| {result['devices']} | {n_gateways} | {cycle_s:.3f} | {bare_s:.3f} | {ratio:.2f} "
        f"| {'yes' if met else 'no'} |"
    )
    print(
        f"\ncycle min/max {min(result['cycle']):.3f}/{max(result['cycle']):.3f} s; "
        f"bare min/max {min(result['bare']):.3f}/{max(result['bare']):.3f} s; "
        f"ratio of the minima {min(result['bare']) / min(result['cycle']):.2f} "
        "(the machine is shared: the minima show the cost without other load)"
    )
