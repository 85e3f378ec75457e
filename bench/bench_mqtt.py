"""MQTT ingestion: readings decoded and validated per second, against a bare aiomqtt loop.

Both paths receive the same number of identical QoS 1 telemetry messages from a separate
publisher process (paho, large in-flight window) through the same broker (Mosquitto on
127.0.0.1:1883), alternating order in each repetition:

* ``bare aiomqtt`` -- ``async for message in client.messages: count += 1``;
* ``bus → readings`` -- :class:`protocols.mqtt.Bus` with :func:`subscribe_telemetry`: topic
  routing, pydantic validation, :class:`Reading` construction, ack after the handler.

Reported per path (medians over the repetitions): wall seconds from the first to the last
message and messages/s (bounded by the publisher and the broker when the receiver keeps up),
and the receiving process's CPU time per message (what the path itself costs, independent of
the publisher). ``ratio`` is bus/bare messages per second; ``cpu ratio`` is bare/bus CPU per
message (both: higher is better, 1.0 = as fast as the bare loop). Mosquitto's default queue
limit (1000) would drop messages for a subscriber that falls behind, so the receiver reports
its progress to the publisher, which stays at most 200 messages ahead (credit-based flow
control, the same for both paths): the receiver always has a backlog, and ``lost`` stays 0.

* ``ingest → sqlite`` / ``ingest → postgresql`` -- the whole ingest path of the service
  (:class:`scheduler.ingest.TelemetryIngest`): the bus as above with manual acknowledgement,
  group commit into a fresh database (:func:`scheduler.ingest.ingest_writer`, as ``waldstadt
  ingest`` runs it), each message acknowledged after its commit. ``msg/s`` counts messages
  committed; ``readings`` is what the database holds afterwards. With Mosquitto's default
  ``max_inflight_messages`` (20) a batch holds at most 20 messages.

Run: ``scripts/bench mqtt`` (``--n=50000 --reps=5``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomqtt

HOST = "127.0.0.1"
PORT = int(os.environ.get("BENCH_MQTT_PORT", "1883"))
DEVICES = 100
#: Messages the publisher may be ahead of the receiver: well below Mosquitto's default queue
#: limit of 1000 (acknowledgements still on their way count against it too, and 800 was seen to
#: overflow it now and then), yet the receiver always has a backlog (it is the bottleneck).
WINDOW = 200
CREDIT_EVERY = 100


@dataclass(frozen=True)
class Run:
    path: str
    received: int
    readings: int
    seconds: float
    cpu_s: float


def _flag(argv: list[str], name: str, default: int) -> int:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return int(arg.split("=", 1)[1])
    return default


def publish(prefix: str, n: int) -> None:
    """The publisher process: ``n`` telemetry messages over ``DEVICES`` devices, QoS 1."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    t0 = datetime(2026, 11, 25, tzinfo=UTC)
    items = []
    for i in range(n):
        ts = (t0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
        body = {"ts": ts, "values": {"power_w": 1000.0 + i % 97, "import_energy_wh": 5e6 + i,
                                     "voltage_l1_v": 230.1}}  # fmt: skip
        items.append((f"{prefix}/devices/meter-{i % DEVICES}/telemetry", json.dumps(body)))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(HOST, PORT)
    client.loop_start()
    print("ready", flush=True)
    sys.stdin.readline()  # go
    credit = [0]  # messages the receiver has reported as received

    def read_credit() -> None:
        for line in sys.stdin:
            credit[0] = int(line)

    threading.Thread(target=read_credit, daemon=True).start()
    info = None
    for i, (topic, payload) in enumerate(items):
        while i - credit[0] >= WINDOW:  # keep the broker's queue for the receiver below its limit
            time.sleep(0.0002)
        info = client.publish(topic, payload, qos=1)
    if info is not None:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


async def _start_publisher(prefix: str, n: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_mqtt", "--publish", prefix, str(n),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"publisher did not start: {line!r}")
    return proc


async def _go(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()


async def _finish(proc: asyncio.subprocess.Process) -> None:
    """Wait for the publisher; kill it if it is stuck waiting for credit (a receiver that
    timed out never sends it), so one bad run cannot hang the whole benchmark."""
    try:
        async with asyncio.timeout(30):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _credit(proc: asyncio.subprocess.Process, received: int) -> None:
    """Tell the publisher how far the receiver is (flow control; same cost on both paths)."""
    if received % CREDIT_EVERY == 0 and proc.stdin is not None:
        proc.stdin.write(b"%d\n" % received)


class _Clock:
    def __init__(self) -> None:
        self.t0 = self.c0 = self.t1 = self.c1 = 0.0

    def first(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def last(self) -> None:
        self.t1, self.c1 = time.perf_counter(), time.process_time()


async def run_bare(n: int) -> Run:
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    clock = _Clock()
    count = 0
    async with aiomqtt.Client(HOST, PORT, identifier=f"{prefix}-bare") as client:
        await client.subscribe(f"{prefix}/devices/+/telemetry", qos=1)
        proc = await _start_publisher(prefix, n)
        await _go(proc)
        try:
            async with asyncio.timeout(60):
                it = aiter(client.messages)
                while count < n:
                    await anext(it)
                    count += 1
                    if count == 1:
                        clock.first()
                    clock.last()
                    _credit(proc, count)
        except TimeoutError:
            pass
        await _finish(proc)
    return Run("bare aiomqtt", count, 0, clock.t1 - clock.t0, clock.c1 - clock.c0)


async def run_bus(n: int) -> Run:
    from kernel.readings import Reading
    from protocols.mqtt import Bus, BusConfig, Inbound, TelemetryPayload, subscribe_telemetry

    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    clock = _Clock()
    count = 0
    readings = 0
    done = asyncio.Event()
    procs: list[asyncio.subprocess.Process] = []

    async def sink(batch: list[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        nonlocal count, readings
        count += 1
        readings += len(batch)
        if count == 1:
            clock.first()
        clock.last()
        _credit(procs[0], count)
        if count >= n:
            done.set()

    client_id = f"{prefix}-bus"
    avail = f"{prefix}/availability"
    config = BusConfig(client_id=client_id, host=HOST, port=PORT, availability_topic=avail)
    async with Bus(config) as bus:
        await subscribe_telemetry(bus, sink, prefix=prefix)
        await bus.wait_connected()
        proc = await _start_publisher(prefix, n)
        procs.append(proc)
        await _go(proc)
        try:
            async with asyncio.timeout(60):
                await done.wait()
        except TimeoutError:
            pass
        await _finish(proc)
        malformed = bus.malformed.total
    # leave nothing behind on the broker: the retained availability and the session
    async with aiomqtt.Client(HOST, PORT, identifier=client_id, clean_session=True) as tidy:
        await tidy.publish(avail, b"", qos=1, retain=True)
    if malformed:
        raise RuntimeError(f"bus counted {malformed} malformed messages in a clean stream")
    return Run("bus → readings", count, readings, clock.t1 - clock.t0, clock.c1 - clock.c0)


async def _pg_database(create: bool, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(host=HOST, port=5432, user="postgres", database="test")
    try:
        if create:
            await admin.execute(f'CREATE DATABASE "{name}"')
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_ingest(n: int, backend: str) -> Run:
    """MQTT → validated → committed → acknowledged: :class:`scheduler.ingest.TelemetryIngest`
    with manual acks and group commit into a fresh database of ``backend``."""
    import tempfile
    from pathlib import Path

    from kernel.clock import RealClock
    from protocols.mqtt import Bus, BusConfig
    from scheduler.ingest import TelemetryIngest, ingest_writer
    from store import Store

    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    tmp = tempfile.TemporaryDirectory()
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        db = f"waldstadt_bench_{uuid.uuid4().hex[:10]}"
        await _pg_database(True, db)
        url = f"postgresql+asyncpg://postgres@{HOST}:5432/{db}"
    clock = _Clock()
    procs: list[asyncio.subprocess.Process] = []
    client_id = f"{prefix}-ingest"
    avail = f"{prefix}/availability"
    config = BusConfig(
        client_id=client_id, host=HOST, port=PORT, availability_topic=avail, manual_ack=True
    )
    try:
        async with (
            Store(url) as store,
            ingest_writer(store, RealClock().now) as writer,
            Bus(config) as bus,
        ):
            ingest = TelemetryIngest(bus, writer, prefix=prefix)
            await ingest.start()
            await bus.wait_connected()
            proc = await _start_publisher(prefix, n)
            procs.append(proc)
            await _go(proc)
            # The ingest is watched from outside through its public counter: the clock starts
            # at the first committed batch and the publisher gets credit as commits advance.
            credited = 0
            started = False
            try:
                async with asyncio.timeout(120):
                    while ingest.committed < n:
                        done = ingest.committed
                        if done and not started:
                            started = True
                            clock.first()
                        step = done - done % CREDIT_EVERY
                        if step > credited:
                            credited = step
                            _credit(procs[0], step)
                        await asyncio.sleep(0.002)
            except TimeoutError:
                pass
            clock.last()
            await _finish(proc)
            stored = await store.readings.count()
        async with aiomqtt.Client(HOST, PORT, identifier=client_id, clean_session=True) as tidy:
            await tidy.publish(avail, b"", qos=1, retain=True)
    finally:
        if backend != "sqlite":
            await _pg_database(False, db)
        tmp.cleanup()
    return Run(f"ingest → {backend}", ingest.committed, stored, clock.t1 - clock.t0,
               clock.c1 - clock.c0)  # fmt: skip


def main(argv: list[str]) -> None:
    n = _flag(argv, "n", 50_000)
    reps = _flag(argv, "reps", 5)
    runs: dict[str, list[Run]] = {
        "bare aiomqtt": [],
        "bus → readings": [],
        "ingest → sqlite": [],
        "ingest → postgresql": [],
    }

    async def ingest_sqlite(n: int) -> Run:
        return await run_ingest(n, "sqlite")

    async def ingest_pg(n: int) -> Run:
        return await run_ingest(n, "postgresql")

    paths = [run_bare, run_bus, ingest_sqlite, ingest_pg]
    for rep in range(reps):
        order = paths if rep % 2 == 0 else list(reversed(paths))
        for fn in order:
            r = asyncio.run(fn(n))
            runs[r.path].append(r)
            print(f"  rep {rep + 1}: {r.path:15s} {r.received} msgs in {r.seconds:.2f} s, "
                  f"cpu {r.cpu_s:.2f} s", file=sys.stderr, flush=True)  # fmt: skip

    def med(rs: list[Run], f: str) -> float:
        return statistics.median(getattr(r, f) for r in rs)

    bare = runs["bare aiomqtt"]
    bare_rate = statistics.median(r.received / r.seconds for r in bare if r.seconds > 0)
    bare_cpu = statistics.median(r.cpu_s / max(r.received, 1) for r in bare)
    print(f"{n} QoS 1 telemetry messages (3 values each) per run, {reps} repetitions, medians\n")
    print(
        "| path | messages | lost | readings | seconds | msg/s | CPU µs/msg | ratio | cpu ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for path, rs in runs.items():
        rate = statistics.median(r.received / r.seconds for r in rs if r.seconds > 0)
        cpu = statistics.median(r.cpu_s / max(r.received, 1) for r in rs)
        received = int(med(rs, "received"))
        print(
            f"| {path} | {received} | {n - received} | {int(med(rs, 'readings'))} "
            f"| {med(rs, 'seconds'):.2f} | {rate:,.0f} | {cpu * 1e6:.1f} "
            f"| {rate / bare_rate:.2f} | {bare_cpu / cpu:.2f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--publish":
        publish(sys.argv[2], int(sys.argv[3]))
    else:
        main(sys.argv[1:])
