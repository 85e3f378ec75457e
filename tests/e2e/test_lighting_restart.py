"""Killed while the lamps are commanded: ``waldstadt run`` in a process of its own, SIGKILL,
then started again on the same database. Every lighting command in force comes back once
under its id; nothing else is sent for those luminaires until the cycle decides something new.

The street's nodes are simulated (``sims.streetlight``) on the test's own Mosquitto; a spy
on the broker records every command the service publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.clock import RealClock
from protocols.mqtt import Bus, BusConfig
from protocols.mqtt.embedded import free_port
from protocols.streetlight import DEFAULT_PREFIX, LightCommand
from sims.streetlight import LuminaireSpec, NodeLogic, StreetlightFleet
from store import Store
from tests.e2e.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
LAMPS = [f"kr-{i}" for i in range(5)]

SITE = textwrap.dedent(
    """\
    site: {name: Killtest, latitude: 51.37, longitude: 7.70}
    dispatch: {poll_interval_s: 2, revert_s: 60, read_timeout_s: 1}
    lighting:
      programs:
        - name: Immer
          steps:
            - {name: always, anchor: clock, clock: "12:00", level_pct: 60, ramp_s: 2}
      calendars:
        - {name: default, default_program: Immer}
      segments:
        - {id: ring, latitude_deg: 51.37, longitude_deg: 7.70, design_class: M4,
           design_level_pct: 60, driver_min_pct: 10}
      luminaires:
    """
) + "".join(
    f"    - {{id: {lid}, segment: ring, street: ring, pole: {i}, rated_power_w: 40}}\n"
    for i, lid in enumerate(LAMPS)
)


@contextlib.contextmanager
def waldstadt_run(site: Path, db: Path, broker: Any) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WALDSTADT_")},
        "WALDSTADT_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "WALDSTADT_BROKER_URL": f"mqtt://{broker.host}:{broker.port}",
        "WALDSTADT_BROKER_CLIENT_ID": "killtest-controller",
        "WALDSTADT_SECRET_KEY": "k" * 32,
        "WALDSTADT_AUDIT_KEY": "a" * 32,
        "WALDSTADT_HTTP_PORT": str(free_port()),
        "WALDSTADT_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", "--site", str(site)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@contextlib.asynccontextmanager
async def street(
    broker: Any,
) -> AsyncIterator[tuple[StreetlightFleet, list[tuple[str, str, float]]]]:
    """The street's five nodes, and a spy that records every command sent to them as
    (luminaire, command id, level)."""
    clock = RealClock()
    nodes = [NodeLogic(lid, clock.now(), LuminaireSpec(40.0, 0.5)) for lid in LAMPS]
    seen: list[tuple[str, str, float]] = []

    async def spy(inbound: Any) -> None:
        cmd: LightCommand = inbound.payload
        seen.append((inbound.topic.split("/")[-2], cmd.command_id, cmd.level_pct))

    def cfg(client_id: str) -> BusConfig:
        return BusConfig(client_id=client_id, host=broker.host, port=broker.port)

    async with Bus(cfg("killtest-fleet")) as bus, Bus(cfg("killtest-spy")) as spy_bus:
        await bus.wait_connected()
        await spy_bus.wait_connected()
        await spy_bus.subscribe(f"{DEFAULT_PREFIX}/+/cmd", LightCommand, spy)
        fleet = StreetlightFleet(bus, clock, nodes, report_interval_s=2.0)
        await fleet.start()
        runner = asyncio.create_task(fleet.run(), name="killtest fleet")
        try:
            yield fleet, seen
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


@pytest.mark.slow
async def test_killed_with_lamps_commanded_each_command_in_force_comes_back_once(
    restartable_broker: Any, tmp_path: Path
) -> None:
    site, db = tmp_path / "site.yaml", tmp_path / "w.sqlite"
    site.write_text(SITE, encoding="utf-8")

    async def journaled() -> bool:
        async with Store(f"sqlite+aiosqlite:///{db}", migrate=False) as store:
            live = await store.commands.live(RealClock().now())
            return {c.command.target for c in live} >= set(LAMPS)

    async with street(restartable_broker) as (fleet, seen):
        with waldstadt_run(site, db, restartable_broker) as first:
            # every lamp at the program's 60 %, commanded by the service and journaled
            try:
                await eventually(
                    lambda: all(
                        n.target_pct == 60.0 and n.mode == "controller"
                        for n in fleet.nodes.values()
                    ),
                    timeout_s=60,
                )
            except AssertionError as exc:
                first.kill()
                err = first.stderr.read().decode() if first.stderr else ""
                states = {k: (n.target_pct, n.mode) for k, n in fleet.nodes.items()}
                raise AssertionError(f"nodes {states}; service said: {err[-3000:]}") from exc
            await eventually(journaled, timeout_s=30, step_s=0.5)
            first.send_signal(signal.SIGKILL)  # no shutdown, no last flush of anything
            first.wait(10)
        in_force = {lid: cid for lid, cid, _level in seen}  # the newest per lamp
        assert set(in_force) == set(LAMPS)
        before, duplicates = len(seen), fleet.outcomes.get("duplicate", 0)
        with waldstadt_run(site, db, restartable_broker) as second:
            await eventually(lambda: len(seen) >= before + len(LAMPS), timeout_s=60)
            await asyncio.sleep(6)  # three more cycles: nothing new to tell the lamps
            assert second.poll() is None, "the restarted service ended"
        after = seen[before:]
        # each lamp's command in force once more, under its id, and nothing else
        assert sorted((lid, cid) for lid, cid, _ in after) == sorted(in_force.items())
        await eventually(
            lambda: fleet.outcomes.get("duplicate", 0) >= duplicates + len(LAMPS), timeout_s=10
        )
        assert all(n.target_pct == 60.0 for n in fleet.nodes.values())
