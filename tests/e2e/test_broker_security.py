"""The broker's credentials and ACL as ``waldstadt broker-config`` writes them, on a real
Mosquitto started by the test: who may switch a streetlight, and who may report for whom.

The site is ``examples/site.yaml`` (six luminaires on the Waldweg, a ChirpStack server for its
sensor) with two MQTT meters and a segment controller that speaks for the last two lamps.
Nodes and the controller use the production code (``StreetlightFleet`` nodes and
``StreetlightController`` on the bus); attackers are bare MQTT 5 clients, so the broker's
answer is seen as it is (PUBACK 135 "not authorized", CONNACK 135). A spoof counts as
delivered if any node applied it or the controller received it; each test ends with a message
of the rightful sender that is sent after every spoof was acknowledged, so a spoof that had
been let through would have arrived before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from app.commands.broker import BrokerFiles, write_broker_files
from app.demo.broker import MosquittoProcess, mosquitto_binary
from kernel.clock import ManualClock
from protocols.mqtt import Backoff, Bus, BusConfig, Inbound, telemetry_topic
from protocols.mqtt.telemetry import encode_telemetry, telemetry_filter
from protocols.streetlight import (
    LightCommand,
    LightState,
    LightTopics,
    StreetlightController,
    dump,
)
from scheduler.brokers import site_broker_clients
from scheduler.site import Site, site_from_data
from sims.streetlight import StreetlightFleet
from tests.e2e.mqtt_probe import FAILURE, Probe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"
T0 = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
NODES = [f"waldweg-{i:02d}" for i in range(1, 7)]
OWN, BEHIND = NODES[:4], NODES[4:]  # own credentials; behind the segment controller
GATEWAY, METERS, CONTROLLER = "segment-ctl", ("meter-a", "meter-b"), "waldstadt-controller"
NOT_AUTHORIZED = 135
TOPICS = LightTopics()


def secured_site() -> Site:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["broker"] = {
        "telemetry_devices": list(METERS),
        "gateways": [{"username": GATEWAY, "luminaires": BEHIND}],
    }
    return site_from_data(data, "site.yaml")


@dataclass(frozen=True)
class Secured:
    broker: MosquittoProcess
    files: BrokerFiles

    def probe(self, username: str | None, password: str | None = None) -> Probe:
        if username is not None and password is None:
            password = self.files.passwords[username]
        return Probe(self.broker.host, self.broker.port, username, password)

    def bus(self, username: str, client_id: str, **kw: object) -> Bus:
        return Bus(
            BusConfig(
                client_id=client_id,
                host=self.broker.host,
                port=self.broker.port,
                username=username,
                password=self.files.passwords[username],
                backoff=Backoff(initial_s=0.05, cap_s=0.5),
                **kw,  # type: ignore[arg-type]
            )
        )


@pytest.fixture
def secured() -> Iterator[Secured]:
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is needed for the broker security tests (.ci/run installs it)")
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-acl-"))  # reachable for mosquitto's user
    try:
        files = write_broker_files(site_broker_clients(secured_site()), folder, "site.yaml")
        with MosquittoProcess(files) as broker:
            yield Secured(broker, files)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that other tasks change
            await asyncio.sleep(0.02)


def command(command_id: str, level_pct: float) -> bytes:
    expires = T0 + timedelta(minutes=5)
    return dump(LightCommand(command_id=command_id, level_pct=level_pct, expires_at=expires))


def test_only_the_site_s_credentials_connect(secured: Secured) -> None:
    answers: dict[str, int] = {}
    for username in secured.files.passwords:
        probe = secured.probe(username)
        answers[username] = probe.connect()
        probe.close()
    assert set(answers.values()) == {0}, answers
    assert len(answers) == 1 + 1 + 4 + 2 + 1  # controller, gateway, nodes, meters, chirpstack
    for who, password in [(None, None), ("waldweg-01", "wrong"), ("intruder", "x" * 43)]:
        probe = secured.probe(who, password)
        assert probe.connect() == NOT_AUTHORIZED, who
        probe.close()


@dataclass
class Tally:
    """Spoof attempts per identity: refused by the broker, and delivered (must stay 0)."""

    attempts: int = 0
    refused: int = 0
    delivered: int = 0


@contextlib.asynccontextmanager
async def running_nodes(secured: Secured) -> AsyncIterator[list[StreetlightFleet]]:
    """The four nodes with credentials of their own (each on its own connection, its will on
    its availability topic, as real nodes do) and the segment controller's two."""
    clock = ManualClock(T0)
    buses = [secured.bus(n, n, availability_topic=TOPICS.availability(n)) for n in OWN]
    buses.append(secured.bus(GATEWAY, "segment-ctl-1"))
    fleets = [StreetlightFleet.build(bus, clock, [n]) for bus, n in zip(buses, OWN, strict=False)]
    fleets.append(StreetlightFleet.build(buses[-1], clock, BEHIND))
    async with contextlib.AsyncExitStack() as stack:
        for bus in buses:
            await stack.enter_async_context(bus)
        for fleet in fleets:
            await fleet.start()
        for bus in buses:
            await bus.wait_connected(10)
        yield fleets


async def command_all(controller: StreetlightController, level_pct: float, tag: str) -> None:
    for node in NODES:
        expires = T0 + timedelta(minutes=5)
        await controller.send_level(node, level_pct, 0.0, f"{tag}-{node}", expires)


async def test_only_the_controller_switches_lights(secured: Secured) -> None:
    async with secured.bus(CONTROLLER, "controller-1") as ctl_bus, running_nodes(secured) as fleets:
        nodes = {n: f.nodes[n] for f in fleets for n in f.nodes}
        await ctl_bus.wait_connected(10)
        controller = StreetlightController(ctl_bus)
        await command_all(controller, 60.0, "ctl")  # the controller's commands reach every node
        await eventually(lambda: all(n.last_command_id == f"ctl-{k}" for k, n in nodes.items()))
        tallies = await asyncio.to_thread(spoof_level_zero, secured, rounds=5)
        await command_all(controller, 70.0, "ctl2")  # after every spoof was acknowledged
        await eventually(lambda: all(n.last_command_id == f"ctl2-{k}" for k, n in nodes.items()))
    received = sum(sum(f.outcomes.values()) for f in fleets)  # applied, duplicate, expired
    for tally in tallies.values():
        tally.delivered = received - 2 * len(NODES)  # anything beyond the controller's two
    report("level-0 commands", tallies)
    assert received == 2 * len(NODES)
    assert all(node.target_pct == 70.0 for node in nodes.values())
    for who, tally in tallies.items():
        assert tally.refused == tally.attempts > 0, who


def spoof_level_zero(secured: Secured, rounds: int) -> dict[str, Tally]:
    """Every identity but the controller's tries to switch every lamp off, ``rounds`` times."""
    tallies: dict[str, Tally] = {}
    for who in (None, "waldweg-01", GATEWAY, METERS[0], "chirpstack"):
        tally = tallies[who or "anonymous"] = Tally()
        probe = secured.probe(who)
        if probe.connect() >= FAILURE:  # refused at CONNECT: not one command goes out
            tally.attempts = tally.refused = rounds * len(NODES)
            probe.close()
            continue
        for r in range(rounds):
            for node in NODES:
                tally.attempts += 1
                code = probe.publish(TOPICS.cmd(node), command(f"spoof-{r}-{node}", 0.0))
                tally.refused += code == NOT_AUTHORIZED
        probe.close()
    return tallies


async def test_devices_report_only_for_themselves(secured: Secured) -> None:
    seen: list[tuple[str, bytes]] = []

    async def on_report(inbound: Inbound[bytes]) -> None:
        seen.append((inbound.topic, inbound.payload))

    async with secured.bus(CONTROLLER, "controller-2") as ctl_bus:
        await ctl_bus.subscribe_raw(TOPICS.all("state"), on_report)
        await ctl_bus.subscribe_raw(telemetry_filter(), on_report)
        await ctl_bus.wait_connected(10)
        tallies = await asyncio.to_thread(spoof_reports, secured)
        await eventually(lambda: set(RIGHTFUL.values()) <= {topic for topic, _ in seen})
    delivered = [(topic, p) for topic, p in seen if SPOOF_READING in p or SPOOF_STATE in p]
    for tally in tallies.values():
        tally.delivered = len(delivered)
    report("readings for another device", tallies)
    assert not delivered
    assert len(seen) == len(RIGHTFUL)
    for who, tally in tallies.items():
        assert tally.refused == tally.attempts > 0, who


#: Who publishes what it may not: a node's state for another node, a meter's reading for the
#: other meter, the gateway's for a node it does not speak for, the network server's and the
#: controller's for a meter; the controller also tries to fake a LoRaWAN uplink.
SPOOFS: dict[str, list[str]] = {
    "waldweg-01": [TOPICS.state("waldweg-02"), TOPICS.state(BEHIND[0]), telemetry_topic(METERS[0])],
    METERS[0]: [telemetry_topic(METERS[1]), TOPICS.state("waldweg-01")],
    GATEWAY: [TOPICS.state("waldweg-01"), telemetry_topic(METERS[1])],
    "chirpstack": [telemetry_topic(METERS[0]), TOPICS.state("waldweg-03")],
    CONTROLLER: [telemetry_topic(METERS[1]), TOPICS.state("waldweg-04"),
                 "application/1/device/70b3d57ed0000009/event/up"],
}  # fmt: skip
#: ... and what each may, sent after the spoofs (the payloads differ: see ``payload``).
RIGHTFUL = {
    METERS[0]: telemetry_topic(METERS[0]),
    "waldweg-01": TOPICS.state("waldweg-01"),
    GATEWAY: TOPICS.state(BEHIND[0]),
}
SPOOF_READING, SPOOF_STATE = b"3003870", b"666"


def payload(topic: str, spoof: bool) -> bytes:
    """A valid state or telemetry payload; a spoof's carries a value no rightful one has."""
    if topic.endswith("/state"):
        energy_wh = float(SPOOF_STATE) if spoof else 1.0
        return dump(LightState(ts=T0, level_pct=0.0, power_w=0.0, energy_wh=energy_wh))
    return encode_telemetry(T0, {"import_energy_wh": float(SPOOF_READING) if spoof else 1.0})


def spoof_reports(secured: Secured) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for who, topics in SPOOFS.items():
        tally = tallies[who] = Tally()
        probe = secured.probe(who)
        assert probe.connect() == 0
        for topic in topics:
            tally.attempts += 1
            tally.refused += probe.publish(topic, payload(topic, True)) == NOT_AUTHORIZED
        probe.close()
    for who, topic in RIGHTFUL.items():
        probe = secured.probe(who)
        assert probe.connect() == 0
        assert probe.publish(topic, payload(topic, False)) < FAILURE, (who, topic)
        probe.close()
    return tallies


def test_a_node_reads_only_its_own_commands(secured: Secured) -> None:
    node = secured.probe("waldweg-01")
    ctl = secured.probe(CONTROLLER)
    assert node.connect() == 0
    assert ctl.connect() == 0
    assert node.subscribe("#") < FAILURE  # granted, but the ACL filters what it receives
    for target in NODES:
        assert ctl.publish(TOPICS.cmd(target), command(f"c-{target}", 50.0)) < FAILURE
    assert ctl.publish(TOPICS.cmd("waldweg-01"), command("last", 50.0)) < FAILURE
    deadline = time.monotonic() + 10
    while not any(b'"last"' in payload for _, payload in node.messages):
        assert time.monotonic() < deadline, node.messages
        time.sleep(0.01)
    node.close()
    ctl.close()
    assert [topic for topic, _ in node.messages] == [TOPICS.cmd("waldweg-01")] * 2


def report(what: str, tallies: dict[str, Tally]) -> None:
    """The figures for the closing note (``pytest -s`` shows them)."""
    print(f"\nspoofed {what}: identity, attempts, refused by the broker, delivered")
    for who, t in tallies.items():
        print(f"  {who:<22} {t.attempts:>4} {t.refused:>4} {t.delivered:>4}")
