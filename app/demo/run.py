"""Running the demo: the town, the service on it, the web app, the pace and the readout."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as wall_time
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from app.demo.broker import DemoBroker, demo_broker
from app.demo.pace import Pace
from app.demo.readout import DemoStatus, collect, render
from app.demo.town import TownBroker, TownInfo, TownProcess
from app.heap import freeze_startup_heap
from app.service import Service
from app.web import serve_web
from kernel.clock import SimClock
from scheduler.settings import Settings
from scheduler.site import Site, site_from_data
from sims.demo_site import demo_site_data
from sims.town import DEFAULT_TOWN, load_town
from sims.town_config import TownConfig

#: The readout's refresh, in real seconds.
REFRESH_S = 3.0


def demo_start(tz: str) -> datetime:
    """Today at 05:30 local: the demo opens at dawn, lights still on, PV about to start."""
    zone = ZoneInfo(tz)
    today = datetime.now(UTC).astimezone(zone).date()
    return datetime.combine(today, wall_time(5, 30), zone).astimezone(UTC)


def _town_broker(broker: DemoBroker) -> TownBroker:
    return TownBroker(broker.host, broker.port, broker.description, broker.town)


@contextlib.contextmanager
def _database(database_url: str | None) -> Iterator[str]:
    """``database_url``, or a fresh SQLite file in a temporary folder that is removed when
    the demo stops (each run starts the same simulated morning: a database kept from an
    earlier run would hold that morning's readings already)."""
    if database_url:
        yield database_url
        return
    with tempfile.TemporaryDirectory(prefix="waldstadt-demo-") as folder:
        yield f"sqlite+aiosqlite:///{Path(folder) / 'waldstadt.sqlite'}"


@dataclass(frozen=True)
class Demo:
    service: Service
    town: TownInfo
    clock: SimClock
    pace: Pace
    #: the broker and its logins (the demo's own Mosquitto, or the one of ``--broker``)
    broker: DemoBroker


@contextlib.asynccontextmanager
async def demo_service(
    town_path: Path,
    speed: float | None = None,
    broker_url: str | None = None,
    database_url: str | None = None,
    port: int | None = None,
) -> AsyncIterator[Demo]:
    """The town (in its own process, on the demo's own Mosquitto with credentials and ACL
    unless ``broker_url``: :mod:`app.demo.broker`), its site, and the running
    :class:`Service` on it; with ``port`` also the web app. The clock starts at the town
    file's ``start`` (default: today 05:30 local) once the town's process has loaded, at
    ``speed`` (default: the town file's), and slows down by itself when the controller cannot
    keep up (:class:`~app.demo.pace.Pace`)."""
    town_cfg = load_town(town_path)
    target = speed or town_cfg.speed
    with _database(database_url) as db_url:
        async with _demo_on(town_cfg, town_path, target, broker_url, db_url, port) as demo:
            yield demo


@contextlib.asynccontextmanager
async def _demo_on(
    town_cfg: TownConfig,
    town_path: Path,
    target: float,
    broker_url: str | None,
    db_url: str,
    port: int | None,
) -> AsyncIterator[Demo]:
    async with (
        demo_broker(town_cfg, broker_url) as broker,
        TownProcess(town_path, _town_broker(broker), target) as proc,
    ):
        start = town_cfg.start or demo_start(town_cfg.timezone)
        clock, sim = await proc.start(start)
        data = demo_site_data(town_cfg, sim.endpoints)
        if broker.section is not None:
            data["broker"] = dict(broker.section)
        site = site_from_data(data, "demo site")
        login = broker.controller
        settings = Settings(
            mode="demo",
            database_url=db_url,
            broker_url=broker.url,
            broker_username=login.username if login else None,
            broker_password=SecretStr(login.password) if login else None,
            # a fresh session per run: a broker outside the demo may still hold the queue of
            # an earlier run's session (stale reports of the same simulated day)
            broker_client_id=f"waldstadt-demo-{uuid.uuid4().hex[:8]}",
            timezone=town_cfg.timezone,
            http_port=port or 8000,
        )
        async with (
            Service(settings, site, clock, broker=(sim.host, sim.mqtt_port)) as service,
            asyncio.TaskGroup() as tasks,
        ):
            pace = Pace(clock, service.controller, service.scheduler, target)
            service.pace = pace
            pacer = tasks.create_task(pace.run(), name="demo pace")
            web: asyncio.Task[None] | None = None
            if port is not None:
                from api.app import create_app

                app = create_app(settings, runtime=service, store=service.store)
                web = tasks.create_task(serve_web(app, "127.0.0.1", port), name="demo web")
            try:
                yield Demo(service, sim, clock, pace, broker)
            finally:
                pacer.cancel()
                if web is not None:
                    web.cancel()


async def _demo_logins(service: Service, site: Site) -> list[tuple[str, str, str]]:
    from api.accounts import ensure_demo_users

    member = site.members[0].id if site.members else "demo"
    return await ensure_demo_users(service.store, member, now=service.clock.now())


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
    (:func:`app.heap.freeze_startup_heap`)."""
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
            pace = demo.pace
            status = await collect(service, town_cfg.name, pace.target_speed, pace.slowed)
            say(render(status))
    return status


__all__ = ["REFRESH_S", "Demo", "demo_service", "demo_start", "run_demo"]
