"""The load of the login-storm test, in a process of its own (its CPU is not the server's):
``python -m tests.api.storm_client BASE_URL LOGINS [PROBE_ONLY_S]``.

Fires ``LOGINS`` logins with random usernames at once and, from another connection, asks
``/health`` every 20 ms until the last login answered (or, with ``PROBE_ONLY_S``, only probes
for that long); prints one JSON line: the logins' status codes and the ``/health`` latencies
in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import httpx


async def probe(base: str, until: asyncio.Event, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        while not until.is_set():
            started = time.perf_counter()
            r = await c.get("/health")
            out.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            await asyncio.sleep(0.02)


async def storm(base: str, logins: int, probe_only_s: float) -> dict[str, object]:
    latencies: list[float] = []
    done = asyncio.Event()
    prober = asyncio.create_task(probe(base, done, latencies), name="probe")
    codes: list[int] = []
    started = time.perf_counter()
    if probe_only_s > 0:
        await asyncio.sleep(probe_only_s)
    else:
        limits = httpx.Limits(max_connections=logins)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as c:
            results = await asyncio.gather(
                *(
                    c.post(
                        "/api/v1/auth/token",
                        data={"username": f"x{uuid.uuid4().hex[:10]}", "password": "guess-123456"},
                    )
                    for _ in range(logins)
                )
            )
        codes = [r.status_code for r in results]
    elapsed_s = time.perf_counter() - started
    done.set()
    await prober
    return {"codes": codes, "health_ms": latencies, "elapsed_s": elapsed_s}


if __name__ == "__main__":
    url, n = sys.argv[1], int(sys.argv[2])
    only = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    print(json.dumps(asyncio.run(storm(url, n, only))))
