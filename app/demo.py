"""``waldstadt demo``: the simulated town run by the same service a Stadtwerk runs.

What it starts, all on this machine: an MQTT broker (embedded amqtt unless ``--broker`` names
one), the simulated town of ``sims/default_town.yaml`` (or ``--town``) on a simulated clock
(default 144×: one simulated day in ten real minutes), the site document of that town
(:func:`sims.demo_site.demo_site_data`, devices on their loopback ports), then
:class:`scheduler.service.Service` with SQLite (a fresh file in a temporary directory,
printed) and the web app on http://127.0.0.1:8000. It creates one demo login per role and
prints them, then every few seconds a compact readout (:func:`render`): the community now
(generation, consumption, shared, grid), the plan, the settlement of the day so far, and the
lights per street. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self, TextIO
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from app.service import Service, freeze_startup_heap
from app.web import serve_web
from kernel.clock import SimClock
from kernel.commands import CommandKind
from kernel.config import validate_data
from kernel.quarterhours import local_day_bounds
from lighting.config import LightingConfig, LightingSite
from lighting.failures import NodeReport
from lighting.tick import LuminaireDecision
from protocols.mqtt.embedded import EmbeddedBroker
from scheduler.community import CommunityNow, community_now
from scheduler.settings import Settings
from scheduler.site import Site, site_from_data
from sims.demo_site import DEFAULT_LIGHTING, demo_lighting_data, demo_site_data
from sims.modbus.fleet import Endpoint
from sims.town import DEFAULT_TOWN, SimTown, TownConfig, load_town

log = logging.getLogger(__name__)

#: The readout's refresh, in real seconds.
REFRESH_S = 3.0


# -- the readout: plain values, rendered by a pure function ------------------------------------


@dataclass(frozen=True, slots=True)
class PlanNow:
    status: str
    objective_eur: float
    curtailments: int
    setpoints: int


@dataclass(frozen=True, slots=True)
class SettlementNow:
    """The newest settlement version of the local day so far (kWh, EUR)."""

    version: int
    kind: str
    consumption_kwh: Decimal
    shared_kwh: Decimal
    grid_import_kwh: Decimal
    amount_eur: Decimal


@dataclass(frozen=True, slots=True)
class StreetNow:
    street: str
    lights: int
    reporting: int
    level_pct: float | None
    power_w: float | None
    why: str = ""


@dataclass(frozen=True)
class DemoStatus:
    town: str
    timezone: str
    now: datetime
    speed: float
    communities: tuple[CommunityNow, ...] = ()
    plans: Mapping[str, PlanNow] = field(default_factory=dict)
    settlement: Mapping[str, SettlementNow] = field(default_factory=dict)
    streets: tuple[StreetNow, ...] = ()
    devices_unavailable: int = 0
    devices: int = 0


def _kw(value_w: float | None, width: int = 8) -> str:
    return "—".rjust(width) if value_w is None else f"{value_w / 1000:{width}.1f}"


def render(status: DemoStatus) -> str:
    """The live readout as text (pure; tested)."""
    local = status.now.astimezone(ZoneInfo(status.timezone))
    lines = [
        f"== {status.town} — {local:%Y-%m-%d %H:%M} {status.timezone} "
        f"(simulated, {status.speed:g}× real time); devices answering "
        f"{status.devices - status.devices_unavailable}/{status.devices}"
    ]
    if not status.communities:
        lines.append("community: no cycle yet")
    for c in status.communities:
        lines.append(
            f"community {c.name} ({c.members} members"
            + (f", {c.unread} unread" if c.unread else "")
            + f"): generation {_kw(c.generation_w, 0)} kW, consumption "
            f"{_kw(c.consumption_w, 0)} kW, shared {_kw(c.shared_w, 0)} kW, "
            f"grid {_kw(c.grid_w, 0)} kW (+ import)"
        )
        plan = status.plans.get(c.community_id)
        lines.append(
            "  plan: none yet"
            if plan is None
            else f"  plan: {plan.status}, {plan.objective_eur:.2f} € over the horizon; "
            f"{plan.setpoints} setpoints in force, {plan.curtailments} PV curtailed"
        )
        st = status.settlement.get(c.community_id)
        lines.append(
            "  settlement today: nothing metered yet"
            if st is None
            else f"  settlement today ({st.kind} v{st.version}): consumption "
            f"{st.consumption_kwh:.1f} kWh, shared {st.shared_kwh:.1f} kWh, from grid "
            f"{st.grid_import_kwh:.1f} kWh, members owe {st.amount_eur:.2f} €"
        )
    for s in status.streets:
        level = "—" if s.level_pct is None else f"{s.level_pct:.0f} %"
        power = "—" if s.power_w is None else f"{s.power_w:.0f} W"
        line = f"street {s.street:<14} lights {s.reporting:>3}/{s.lights:<3} level {level:>6}"
        lines.append(f"{line}  {power:>7}" + (f"  ({s.why})" if s.why else ""))
    return "\n".join(lines)


def _streets(service: Service) -> tuple[StreetNow, ...]:
    lighting = service.lighting
    if lighting is None:
        return ()
    by_street: dict[str, list[str]] = {}
    for lum in lighting.index.luminaires.values():
        by_street.setdefault(lum.street_id, []).append(lum.luminaire_id)
    states: Mapping[str, NodeReport] = lighting.node_states
    decisions: Mapping[str, LuminaireDecision] = lighting.decisions
    out: list[StreetNow] = []
    for street, ids in sorted(by_street.items()):
        seen = [states[i] for i in ids if i in states]
        first = decisions.get(sorted(ids)[0])
        out.append(
            StreetNow(
                street,
                len(ids),
                len(seen),
                sum(s.level_pct for s in seen) / len(seen) if seen else None,
                sum(s.power_w for s in seen) if seen else None,
                first.reason_text if first is not None else "",
            )
        )
    return tuple(out)


async def collect(service: Service, town: str) -> DemoStatus:
    """What the readout shows, read from the running service."""
    site = service.site
    now = service.clock.now()
    report = service.last_report
    tz = ZoneInfo(site.site.timezone)
    communities: list[CommunityNow] = []
    plans: dict[str, PlanNow] = {}
    settlement: dict[str, SettlementNow] = {}
    in_force = service.command_writer.in_force()
    start, end = local_day_bounds(now.astimezone(tz).date(), tz)
    for c in site.communities:
        if report is not None:
            communities.append(community_now(site, c.id, report.snapshot))
        plan = service.jobs.plans.get(c.id)
        if plan is not None:
            mine = [cmd for cmd in in_force if cmd.source.endswith(f":{c.id}")]
            curtailed = sum(
                1 for cmd in mine if cmd.kind is CommandKind.POWER_LIMIT_PCT and cmd.value < 100
            )
            plans[c.id] = PlanNow(plan.status.value, plan.objective_eur, curtailed, len(mine))
        run = await service.store.settlement.latest(c.id, start, end)
        if run is not None:
            st = run.statements
            settlement[c.id] = SettlementNow(
                run.version,
                run.reason,
                sum((s.consumption_wh for s in st), Decimal(0)) / 1000,
                sum((s.shared_received_wh for s in st), Decimal(0)) / 1000,
                sum((s.grid_import_wh for s in st), Decimal(0)) / 1000,
                sum((s.amount_eur for s in st), Decimal(0)),
            )
    unavailable = len(report.snapshot.unavailable) if report is not None else 0
    return DemoStatus(
        town=town,
        timezone=site.site.timezone,
        now=now,
        speed=service.clock.speed,
        communities=tuple(communities),
        plans=plans,
        settlement=settlement,
        streets=_streets(service),
        devices_unavailable=unavailable,
        devices=len(site.devices),
    )


# -- running it ---------------------------------------------------------------------------------


def demo_lighting(town: TownConfig, path: Path = DEFAULT_LIGHTING) -> LightingSite:
    """The demo's lighting site (programs of ``path``, the town's luminaires and sensors)."""
    site = validate_data(LightingConfig, demo_lighting_data(town, path), path.name).site
    assert site is not None
    return site


def demo_start(tz: str) -> datetime:
    """Today at 05:30 local: the demo opens at dawn, lights still on, PV about to start."""
    zone = ZoneInfo(tz)
    today = datetime.now(UTC).astimezone(zone).date()
    return datetime.combine(today, wall_time(5, 30), zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TownInfo:
    """Where the running town answers (sent by the town's process)."""

    host: str
    mqtt_port: int
    broker: str
    endpoints: Mapping[str, Endpoint]
    gateways: int
    lights: int
    sensors: int


def _town_child(conn: Connection, town_path: str, broker_url: str | None) -> None:
    """The town's process: loads, says so, then starts the broker (unless given) and every
    simulator on the clock the parent sends, and runs until the parent says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (Ctrl-C goes to both)
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        cfg = load_town(town_path)
        conn.send("loaded")
        start, speed, sent_at_mono = await asyncio.to_thread(conn.recv)
        # the parent's simulated time: its start + the real time elapsed since × speed
        elapsed_s = time.monotonic() - sent_at_mono
        clock = SimClock(start + timedelta(seconds=elapsed_s * speed), speed)
        with _broker(broker_url) as (host, port, desc):
            async with SimTown(cfg, clock, host, port) as sim:
                conn.send(
                    TownInfo(host, port, desc, dict(sim.modbus.endpoints),
                             len(sim.modbus.gateways), len(sim.light_ids), len(sim.sensors))
                )  # fmt: skip
                await asyncio.to_thread(conn.recv)  # any message: stop

    asyncio.run(main())


class TownProcess:
    """The simulated town in a process of its own, so that the simulators and the controller
    get a core each (a fast demo clock keeps both busy).

    ``async with TownProcess(path, broker_url) as town: info = await town.start(clock)`` —
    the process loads first; the clock is made after that, so that the interpreter's start
    does not eat simulated time."""

    def __init__(
        self, town_path: Path, broker_url: str | None, start_timeout_s: float = 60
    ) -> None:
        self._timeout_s = start_timeout_s
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_town_child,
            args=(child, str(town_path), broker_url),
            name="waldstadt demo town",
            daemon=True,
        )

    async def _receive(self, what: str) -> object:
        try:
            if await asyncio.to_thread(self._conn.poll, self._timeout_s):
                return self._conn.recv()
        except EOFError:
            raise RuntimeError(
                f"the demo town's process ended before it could {what} "
                f"(exit code {self._proc.exitcode}); its error is printed above"
            ) from None
        raise RuntimeError(f"the demo town did not {what} within {self._timeout_s:g} s")

    async def __aenter__(self) -> Self:
        self._proc.start()
        try:
            await self._receive("load")
        except BaseException:
            await self._stop()
            raise
        return self

    async def start(self, clock: SimClock) -> TownInfo:
        self._conn.send((clock.now(), clock.speed, time.monotonic()))
        info = await self._receive("start")
        assert isinstance(info, TownInfo)
        return info

    async def __aexit__(self, *_exc: object) -> None:
        await self._stop()

    async def _stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        await asyncio.to_thread(self._proc.join, 15)
        if self._proc.is_alive():
            self._proc.terminate()
            await asyncio.to_thread(self._proc.join, 5)


@contextlib.contextmanager
def _broker(broker_url: str | None) -> Iterator[tuple[str, int, str]]:
    if broker_url:
        parts = urlsplit(broker_url)
        yield parts.hostname or "127.0.0.1", parts.port or 1883, broker_url
        return
    with EmbeddedBroker() as embedded:
        yield embedded.host, embedded.port, f"embedded amqtt on 127.0.0.1:{embedded.port}"


def _database(database_url: str | None) -> str:
    if database_url:
        return database_url
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-demo-"))
    return f"sqlite+aiosqlite:///{folder / 'waldstadt.sqlite'}"


async def run_demo(
    *,
    speed: float | None = None,
    town: Path | None = None,
    broker_url: str | None = None,
    duration_s: float | None = None,
    port: int | None = 8000,
    database_url: str | None = None,
    refresh_s: float = REFRESH_S,
    out: TextIO | None = None,
    freeze_heap: bool = False,
) -> DemoStatus | None:
    """Run the demo until Ctrl-C (or ``duration_s`` real seconds after it started); returns
    the last status.

    ``port=None`` runs without the web app (tests, the benchmark); ``freeze_heap`` (the
    command line) takes the start-up heap out of the garbage collector's view
    (:func:`app.service.freeze_startup_heap`)."""
    stream: TextIO = out if out is not None else sys.stdout
    town_path = town or DEFAULT_TOWN
    town_cfg = load_town(town_path)
    loop = asyncio.get_running_loop()
    status: DemoStatus | None = None

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    async with demo_service(town_path, speed, broker_url, database_url, port) as demo:
        service, sim, clock = demo.service, demo.town, demo.clock
        site = service.site
        logins = await _demo_logins(service, site)
        say(
            f"Waldstadt demo: broker {sim.broker}; {len(site.devices)} Modbus devices on "
            f"{sim.gateways} gateways; {sim.lights} streetlights; {sim.sensors} traffic "
            f"sensors; {len(site.members)} members in {len(site.communities)} community; "
            f"clock {clock.speed:g}× real time."
        )
        say(f"database: {service.settings.database_url}")
        if port is not None:
            say(f"web: http://127.0.0.1:{port}/  (API docs: /docs)")
        say("logins: " + ", ".join(f"{u} / {p} ({r})" for u, p, r in logins))
        say("Ctrl-C stops.")
        if freeze_heap:
            freeze_startup_heap()
        deadline = None if duration_s is None else loop.time() + duration_s
        while deadline is None or loop.time() < deadline:
            wait = refresh_s if deadline is None else min(refresh_s, deadline - loop.time())
            await asyncio.sleep(max(0.0, wait))
            status = await collect(service, town_cfg.name)
            say(render(status))
    return status


@dataclass(frozen=True)
class Demo:
    service: Service
    town: TownInfo
    clock: SimClock


@contextlib.asynccontextmanager
async def demo_service(
    town_path: Path,
    speed: float | None = None,
    broker_url: str | None = None,
    database_url: str | None = None,
    port: int | None = None,
) -> AsyncIterator[Demo]:
    """The town (in its own process, with the embedded broker unless ``broker_url``), its
    site, and the running :class:`Service` on it; with ``port`` also the web app. The clock
    starts at the town file's ``start`` (default: today 05:30 local) once the town's process
    has loaded, at ``speed`` (default: the town file's)."""
    town_cfg = load_town(town_path)
    async with TownProcess(town_path, broker_url) as proc:
        start = town_cfg.start or demo_start(town_cfg.timezone)
        clock = SimClock(start, speed or town_cfg.speed)
        sim = await proc.start(clock)
        site = site_from_data(demo_site_data(town_cfg, sim.endpoints), "demo site")
        settings = Settings(
            mode="demo",
            database_url=_database(database_url),
            broker_url=f"mqtt://{sim.host}:{sim.mqtt_port}",
            # a fresh session per run: a broker outside the demo may still hold the queue of
            # an earlier run's session (stale reports of the same simulated day)
            broker_client_id=f"waldstadt-demo-{uuid.uuid4().hex[:8]}",
            timezone=town_cfg.timezone,
            http_port=port or 8000,
        )
        async with Service(settings, site, clock, broker=(sim.host, sim.mqtt_port)) as service:
            web: asyncio.Task[None] | None = None
            if port is not None:
                from api.app import create_app

                app = create_app(settings, runtime=service, store=service.store)
                web = asyncio.create_task(serve_web(app, "127.0.0.1", port), name="demo web")
            try:
                yield Demo(service, sim, clock)
            finally:
                if web is not None:
                    web.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await web


async def _demo_logins(service: Service, site: Site) -> list[tuple[str, str, str]]:
    from api.accounts import ensure_demo_users

    member = site.members[0].id if site.members else "demo"
    return await ensure_demo_users(service.store, member, now=service.clock.now())


__all__ = [
    "CommunityNow",
    "Demo",
    "DemoStatus",
    "PlanNow",
    "SettlementNow",
    "StreetNow",
    "TownInfo",
    "TownProcess",
    "collect",
    "community_now",
    "demo_lighting",
    "demo_service",
    "demo_start",
    "render",
    "run_demo",
]
