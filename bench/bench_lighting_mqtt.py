"""A traffic detection to the corridor's commands on the broker: latency at 100 detections/s.

Issue 6's target: **p99 ≤ 50 ms at 100 detections/s on loopback**. Measured from publishing
a presence uplink (a ChirpStack ``event/up`` with fPort 11, as the network server sends it)
to receiving, at a separate subscriber, the *last* of the corridor's dim commands
(``{prefix}/{luminaire}/cmd``) -- the whole production path: broker → the running
:class:`app.service.Service` (its bus, the lighting's inbox: uplink validation, frame decode,
sensor lookup; the presence fast path: :func:`lighting.presence.apply_detection`; the one
command writer with its journal in SQLite) → broker → subscriber. Broker: Mosquitto on
127.0.0.1:1883.

The site: the issue's scale, 400 segments of 25 luminaires (10,000 luminaires on 100
streets), three presence sensors per segment (poles 3, 10 and 17, so their corridors do not
overlap); a detection boosts 7 luminaires (3 poles both ways, direction unknown), so every
detection produces 7 commands. Detections visit the 1,200 sensors in a spread order, each
once per run of up to 1,200, so every detection finds its corridor unboosted. The service
runs its cycle every second alongside (the 10,000-luminaire decision in a worker thread).
Two holds: a minute (the boosts end after the run) and 0.5 s, the worst case, where every
boost also ends within the run and the cycles publish another 700 commands/s that compete
with the fast path.
The clock is a simulated clock at real speed that starts on a November night, so the run
is a night whenever it is started. The start-up flood (10,000 retained schedules and first
commands) is flushed before the subscriber starts and is not measured.

Baseline in the same run: the bare MQTT round trip of one message (publish on one bus →
receive on another, same rate and count). Publisher, service and subscriber share one process
and one event loop (and 2 CPU cores with other work), so the numbers are upper bounds.

Rows marked ``[TCP_NODELAY broker+clients]`` repeat both on a Mosquitto of the bench's own
(free port, ``set_tcp_nodelay true``) with every client socket set to ``TCP_NODELAY``.
Neither paho nor Mosquitto's default disables Nagle's algorithm, and the service's path
(receive and acknowledge an uplink, publish 7 small commands at once) is the case it hurts:
small packets wait for the peer's delayed ACK, 10–40 ms. Setting the option in
``protocols.mqtt.Bus`` and in the broker's configuration is what these rows measure.

Run: ``scripts/bench lighting_mqtt`` (``--detections=1000 --rate=100 --reps=3``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiomqtt

from app.heap import freeze_startup_heap
from app.service import Service
from kernel.clock import SimClock
from kernel.config import parse_yaml
from lighting.presence import Detection, corridor
from protocols.lorawan import PRESENCE_FPORT, PresenceEvent, encode_presence
from protocols.mqtt import Bus, BusConfig
from protocols.mqtt.inbound import Inbound
from protocols.streetlight import DEFAULT_PREFIX
from scheduler.settings import Settings
from scheduler.site import Site, site_from_data
from sims.demo_site import DEFAULT_LIGHTING
from sims.traffic import SensorIdentity, chirpstack_event, uplink_topic

HOST, PORT = "127.0.0.1", 1883
SEGMENTS, PER_SEGMENT, PER_STREET = 400, 25, 4
#: Presence sensors per segment, at these poles: corridors of 7 that do not overlap.
SENSOR_POLES = (3, 10, 17)
SENSORS = SEGMENTS * len(SENSOR_POLES)
#: Visit order of the sensors: a stride coprime to their number, so every detection of a run
#: (up to 1,200) has a corridor of its own, spread over the streets.
STRIDE = 397
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)  # 'evening' 70 %, boost to 100 %
TARGET_P99_MS = 50.0
TICK_S = 1.0
#: The presence hold in s: realistic (a minute, the boosts end after the run) and the worst
#: case (every boost also ends within the run: the service publishes 1,400 commands/s).
HOLDS_S = (60.0, 0.5)


@dataclass(frozen=True)
class Run:
    path: str
    sent: int
    latencies_ms: list[float]

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, round(q / 100.0 * (len(xs) - 1)))]


def _tag(nodelay: bool) -> str:
    return " [TCP_NODELAY broker+clients]" if nodelay else ""


def _flag(argv: list[str], name: str, default: int) -> int:
    for a in argv:
        if a.startswith(f"--{name}="):
            return int(a.split("=", 1)[1])
    return default


def bench_site(hold_s: float, token: str) -> Site:
    """The site file of the run: only street lighting (programs and calendars of the demo),
    400 segments of 25 luminaires on 100 streets, 3 presence sensors per segment; the cycle
    every second."""
    data, _ = parse_yaml(DEFAULT_LIGHTING.read_text(encoding="utf-8"), DEFAULT_LIGHTING.name)
    presence = {"poles_ahead": 3, "poles_behind": 1, "boost_pct": 100.0, "hold_s": hold_s,
                "ramp_down_s": 0.0}  # fmt: skip
    segments: list[dict[str, object]] = []
    lums: list[dict[str, object]] = []
    sensors: list[dict[str, object]] = []
    for s in range(SEGMENTS):
        seg, street = f"seg-{s}", f"b{token}-st-{s // PER_STREET}"
        segments.append({"id": seg, "calendar": "wohnstrasse", "design_class": "M4",
                         "latitude_deg": 51.51, "longitude_deg": 7.47,
                         "lower_classes": ["M5", "M6"], "design_level_pct": 50.0,
                         "driver_min_pct": 10.0, "presence": presence})  # fmt: skip
        first = (s % PER_STREET) * PER_SEGMENT
        for i in range(PER_SEGMENT):
            lums.append({"id": f"b{token}-{s}-{i}", "segment": seg, "street": street,
                         "pole": first + i, "rated_power_w": 40.0})  # fmt: skip
        for p in SENSOR_POLES:
            sensors.append({"id": f"b{token}-ps-{s}-{p}", "segment": seg, "street": street,
                            "pole": first + p})  # fmt: skip
    lighting = {"programs": data["programs"], "calendars": data["calendars"],
                "segments": segments, "luminaires": lums, "sensors": sensors}  # fmt: skip
    return site_from_data(
        {
            "site": {"name": "Bench", "latitude": 51.51, "longitude": 7.47},
            "dispatch": {"poll_interval_s": TICK_S, "read_timeout_s": 1.0},
            "lighting": lighting,
        },
        "bench-site",
    )


@contextlib.contextmanager
def tcp_nodelay(enabled: bool) -> Iterator[None]:
    """While enabled, every new TCP connection of this process sets ``TCP_NODELAY``.

    paho does not set it, so a client that publishes right after acknowledging a message
    (the service: uplink in, commands out) has its small packets held by Nagle's algorithm
    until the broker's delayed ACK (≈ 10–40 ms). The variant shows what the bus gains by
    setting the option on its socket."""
    if not enabled:
        yield
        return
    original = socket.create_connection

    def create_connection(*args: object, **kwargs: object) -> socket.socket:
        sock = original(*args, **kwargs)  # type: ignore[arg-type]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    socket.create_connection = create_connection
    try:
        yield
    finally:
        socket.create_connection = original


@contextlib.contextmanager
def nodelay_broker() -> Iterator[int | None]:
    """A Mosquitto of our own on a free port with ``set_tcp_nodelay true`` (None without the
    binary); the shared broker on 1883 runs Mosquitto's default (Nagle on)."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    workdir = tempfile.mkdtemp(prefix="bench-mosquitto-")
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} {HOST}\nallow_anonymous true\nset_tcp_nodelay true\n"
                "log_type none\n")  # fmt: skip
    proc = subprocess.Popen(
        [binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(workdir, ignore_errors=True)


def _cfg(client_id: str, port: int) -> BusConfig:
    return BusConfig(client_id=client_id, host=HOST, port=port)


async def _paced(n: int, rate: float, send: Callable[[int], Awaitable[None]]) -> None:
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)


async def _tidy(port: int, client_ids: list[str], retained: list[str]) -> None:
    """Leave nothing behind: retained schedules and availability, persistent sessions."""
    async with aiomqtt.Client(HOST, port, identifier=f"tidy-{uuid.uuid4().hex[:8]}") as c:
        for topic in retained:
            await c.publish(topic, b"", qos=1, retain=True)
    for cid in client_ids:
        async with aiomqtt.Client(HOST, port, identifier=cid, clean_session=True) as c:
            await c.publish(f"waldstadt/clients/{cid}/availability", b"", qos=1, retain=True)


async def run_baseline(n: int, rate: float, port: int, nodelay: bool) -> Run:
    token = uuid.uuid4().hex[:10]
    topic = f"bench-{token}/rtt"
    sent_at: dict[int, float] = {}
    lat: list[float] = []
    done = asyncio.Event()

    async def on_msg(inbound: Inbound[bytes]) -> None:
        t = time.perf_counter()
        lat.append((t - sent_at[int(inbound.payload)]) * 1000.0)
        if len(lat) >= n:
            done.set()

    ids = [f"bench-rx-{token}", f"bench-tx-{token}"]
    async with Bus(_cfg(ids[0], port)) as rx, Bus(_cfg(ids[1], port)) as tx:
        await rx.wait_connected()
        await tx.wait_connected()
        await rx.subscribe_raw(topic, on_msg)

        async def send(i: int) -> None:
            sent_at[i] = time.perf_counter()
            await tx.publish(topic, str(i).encode())

        await _paced(n, rate, send)
        try:
            async with asyncio.timeout(30):
                await done.wait()
        except TimeoutError:
            pass
    await _tidy(port, ids, [])
    return Run(f"bare MQTT round trip (1 message){_tag(nodelay)}", n, lat)


async def run_service(n: int, rate: float, port: int, nodelay: bool, hold_s: float) -> Run:
    token = uuid.uuid4().hex[:8]
    site = bench_site(hold_s, token)
    assert site.lighting is not None
    index = site.lighting.site.index
    clock = SimClock(NIGHT, speed=1.0)
    sensors = list(index.sensors.values())
    idents = [
        SensorIdentity(f"{k:016x}", sensor.sensor_id, application_id=f"bench-{token}")
        for k, sensor in enumerate(sensors)
    ]
    sizes = [
        len(corridor(index, Detection(sensor.street_id, sensor.pole_index, NIGHT)))
        for sensor in sensors
    ]
    sent_at: dict[str, float] = {}
    expect: dict[str, int] = {}
    got: dict[str, int] = {}
    lat: list[float] = []
    done = asyncio.Event()

    async def on_cmd(inbound: Inbound[bytes]) -> None:
        t = time.perf_counter()
        cmd_id = json.loads(inbound.payload)["command_id"]
        if not cmd_id.startswith(f"presence-b{token}"):
            return
        stamp = cmd_id.rsplit("-", 1)[1]
        got[stamp] = got.get(stamp, 0) + 1
        if got[stamp] == expect.get(stamp):
            lat.append((t - sent_at[stamp]) * 1000.0)
            if len(lat) >= n:
                done.set()

    ids = [f"bench-svc-{token}", f"bench-ns-{token}", f"bench-sub-{token}"]
    with tempfile.TemporaryDirectory(prefix="bench-lighting-") as tmp:
        settings = Settings(  # type: ignore[call-arg]
            mode="demo",
            database_url=f"sqlite+aiosqlite:///{tmp}/w.db",
            broker_url=f"mqtt://{HOST}:{port}",
            broker_client_id=ids[0],
        )
        async with (
            Service(settings, site, clock) as service,
            Bus(_cfg(ids[1], port)) as ns,
            Bus(_cfg(ids[2], port)) as sub,
        ):
            for b in (ns, sub):
                await b.wait_connected()
            # the start-up flood (10,000 retained schedules and first commands) is not measured
            await service.bus.flush(120)
            freeze_startup_heap()  # as `waldstadt run` does once the service is up
            await sub.subscribe_raw(f"{DEFAULT_PREFIX}/+/cmd", on_cmd)
            lighting = service.lighting
            assert lighting is not None
            seen = lighting.stats.detections

            async def send(i: int) -> None:
                s = (i * STRIDE) % SENSORS
                at = clock.now()
                stamp = at.strftime("%Y%m%dT%H%M%S%f")
                frame = encode_presence(PresenceEvent(1, 40))
                payload = chirpstack_event(idents[s], PRESENCE_FPORT, i + 1, frame, at)
                expect[stamp] = sizes[s]
                sent_at[stamp] = time.perf_counter()
                await ns.publish(uplink_topic(idents[s], "chirpstack"), payload)

            await _paced(n, rate, send)
            try:
                async with asyncio.timeout(30):
                    await done.wait()
            except TimeoutError:
                pass
            if lighting.stats.detections - seen != n:
                print(f"  service saw {lighting.stats.detections - seen} of {n} detections",
                      file=sys.stderr)  # fmt: skip
            await service.bus.flush(120)
    await _tidy(port, ids, [f"{DEFAULT_PREFIX}/{lid}/schedule" for lid in index.luminaires])
    return Run(
        f"detection → corridor commands (7 messages), hold {hold_s:g} s{_tag(nodelay)}", n, lat
    )


def main(argv: list[str]) -> None:
    n = _flag(argv, "detections", 1000)
    rate = float(_flag(argv, "rate", 100))
    reps = _flag(argv, "reps", 3)
    runs: dict[str, list[Run]] = {}
    with nodelay_broker() as nd_port:
        variants: list[tuple[str, int, bool, float]] = [
            ("bare", PORT, False, 0.0),
            *[("service", PORT, False, h) for h in HOLDS_S],
        ]
        if nd_port is not None:
            variants += [
                ("bare", nd_port, True, 0.0),
                *[("service", nd_port, True, h) for h in HOLDS_S],
            ]
        for rep in range(reps):
            order = variants if rep % 2 == 0 else variants[::-1]
            for kind, port, nodelay, hold_s in order:
                with tcp_nodelay(nodelay):
                    if kind == "bare":
                        r = asyncio.run(run_baseline(n, rate, port, nodelay))
                    else:
                        r = asyncio.run(run_service(n, rate, port, nodelay, hold_s))
                runs.setdefault(r.path, []).append(r)
                print(f"  rep {rep + 1}: {r.path}: {len(r.latencies_ms)}/{n} complete, "
                      f"p50 {r.pct(50):.2f} ms, p99 {r.pct(99):.2f} ms",
                      file=sys.stderr, flush=True)  # fmt: skip
    print(
        f"{SEGMENTS * PER_SEGMENT} luminaires; {n} detections at {rate:g}/s per run, {reps} "
        f"repetitions; medians over the runs (p99 of each run listed). Shared broker: Mosquitto "
        f"{HOST}:{PORT} (defaults); [TCP_NODELAY]: a Mosquitto of the bench's own with "
        "set_tcp_nodelay true and the clients' sockets with TCP_NODELAY\n"
    )
    print("| path | detections | complete | rate /s | p50 ms | p95 ms | p99 ms | max ms "
          "| p99 per run ms | target met (p99 ≤ 50 ms) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path, rs in runs.items():
        med = {q: statistics.median(r.pct(q) for r in rs) for q in (50, 95, 99, 100)}
        met = "—" if path.startswith("bare") else ("yes" if med[99] <= TARGET_P99_MS else "no")
        per_run = ", ".join(f"{r.pct(99):.1f}" for r in rs)
        complete = statistics.median(len(r.latencies_ms) for r in rs)
        print(
            f"| {path} | {n} | {complete:g} | {rate:g} | {med[50]:.2f} | {med[95]:.2f} "
            f"| {med[99]:.2f} | {med[100]:.2f} | {per_run} | {met} |"
        )
    print()
    for nodelay in (False, True):
        bare = runs.get(f"bare MQTT round trip (1 message){_tag(nodelay)}")
        if not bare:
            continue
        b50 = statistics.median(r.pct(50) for r in bare)
        for path, rs in runs.items():
            if (
                path.startswith("detection")
                and path.endswith(_tag(nodelay))
                and (nodelay or not path.endswith("]"))
            ):
                d50 = statistics.median(r.pct(50) for r in rs)
                print(f"p50 ratio, {path} / bare round trip{_tag(nodelay)}: {d50 / b50:.1f}×")


if __name__ == "__main__":
    main(sys.argv[1:])
