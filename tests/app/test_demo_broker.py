"""The demo runs with authentication on: its own Mosquitto with the generated credentials and
ACL, the service as the controller, each street's lamps behind the street's gateway login.

The scenario of issue 13 on the demo (25 of 25 lights kept dark by anonymous level-0
commands, 40 of 40 samples): now every spoof is refused by the broker and no lamp goes dark.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.demo import Demo, demo_service
from app.demo.broker import DemoBroker, demo_broker, mosquitto_binary, street_username
from app.demo.readout import streets_now
from kernel.errors import ConfigError
from protocols.streetlight import LightCommand, LightTopics, dump
from sims.town import load_town
from tests.e2e.mqtt_probe import FAILURE, Probe

#: Two streets on a November night (lights on), one counter on ChirpStack and one on TTS.
TOWN = """\
name: Brokerdorf
latitude: 51.37
longitude: 7.70
timezone: Europe/Berlin
start: 2026-11-25T21:00:00Z
speed: 30
households:
  - {prefix: h01, gateway: gw-a, annual_kwh: 3500, kwp: 8.0}
streets:
  - {name: waldweg, luminaires: 5, rated_power_w: 40, sensor_dev_eui: "70b3d57ed0005501"}
  - {name: lindenallee, luminaires: 5, rated_power_w: 50, sensor_dev_eui: "70b3d57ed0005502",
     network: tts}
"""
NOT_AUTHORIZED = 135
SAMPLES = 40


@pytest.fixture
def town(tmp_path: Path) -> Path:
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is needed for the demo (.ci/run installs it)")
    path = tmp_path / "town.yaml"
    path.write_text(TOWN)
    return path


def lamps(demo: Demo) -> list[str]:
    lighting = demo.service.lighting
    assert lighting is not None
    return sorted(lighting.index.luminaires)


def dark(demo: Demo) -> int:
    lighting = demo.service.lighting
    assert lighting is not None
    return sum(1 for report in lighting.node_states.values() if report.level_pct < 1.0)


def spoof_round(broker: DemoBroker, targets: list[str], r: int) -> tuple[int, int]:
    """Anonymous, a street's gateway and each network server try to switch every lamp off:
    (attempts, refused by the broker)."""
    expires = datetime.now(UTC) + timedelta(days=400)  # the town's clock runs in 2026
    attempts = refused = 0
    logins: list[tuple[str | None, str | None]] = [(None, None)]
    logins += [(login.username, login.password) for login in broker.town.streets.values()]
    logins += [(login.username, login.password) for login in broker.town.networks.values()]
    for username, password in logins:
        probe = Probe(broker.host, broker.port, username, password)
        if probe.connect() >= FAILURE:
            attempts += len(targets)
            refused += len(targets)
            probe.close()
            continue
        for node in targets:
            cmd = LightCommand(command_id=f"spoof-{r}-{node}", level_pct=0.0, expires_at=expires)
            attempts += 1
            refused += probe.publish(LightTopics().cmd(node), dump(cmd)) == NOT_AUTHORIZED
        probe.close()
    return attempts, refused


async def test_the_demo_s_broker_lets_only_the_controller_switch_lights(town: Path) -> None:
    """(Also: without ``--database`` the demo's SQLite file lives in a folder of its own that
    goes when the demo stops.)"""
    async with demo_service(town) as demo:
        db_file = Path(demo.service.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
        assert await asyncio.to_thread(db_file.is_file)
        broker = demo.broker
        assert "credentials and ACL on" in demo.town.broker
        assert demo.service.settings.broker_username == "waldstadt-controller"
        assert set(broker.town.streets) == {"waldweg", "lindenallee"}
        assert {s.username for s in broker.town.streets.values()} == {
            street_username("waldweg"),
            street_username("lindenallee"),
        }
        assert set(broker.town.networks) == {"chirpstack", "tts"}
        targets = lamps(demo)
        await demo.service.bus.wait_connected(10)

        def all_lit() -> bool:
            streets = streets_now(demo.service)
            return all(s.reporting == s.lights and (s.level_pct or 0) > 0 for s in streets)

        deadline = time.monotonic() + 60
        while not all_lit():  # every lamp reports through its street's gateway
            assert time.monotonic() < deadline, streets_now(demo.service)
            await asyncio.sleep(0.1)
        attempts = refused = dark_samples = 0
        for r in range(SAMPLES):
            a, f = await asyncio.to_thread(spoof_round, broker, targets, r)
            attempts, refused = attempts + a, refused + f
            await asyncio.sleep(0.05)
            dark_samples += dark(demo) > 0
    print(
        f"\ndemo: {attempts} spoofed level-0 commands in {SAMPLES} samples, {refused} refused "
        f"by the broker; samples with a dark lamp: {dark_samples} of {SAMPLES}"
    )
    assert not await asyncio.to_thread(db_file.parent.exists)  # the database went with it
    assert attempts == SAMPLES * 5 * len(targets)  # anonymous, 2 gateways, 2 network servers
    assert refused == attempts
    assert dark_samples == 0


async def test_the_demo_without_mosquitto_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.demo.broker.mosquitto_binary", lambda: None)
    with pytest.raises(ConfigError, match="install Mosquitto"):
        async with demo_broker(load_town(), None):
            pass


async def test_a_broker_of_one_s_own_is_shown_without_its_password() -> None:
    url = "mqtt://demo-user:s3cret-pass@127.0.0.1:1883"
    async with demo_broker(load_town(), url) as broker:
        assert "s3cret" not in broker.description
        assert broker.description == "mqtt://127.0.0.1:1883"
        assert broker.controller is not None
        assert broker.controller.username == "demo-user"
        assert "s3cret" not in repr(broker.controller)
        login = broker.town.street("anything")
        assert login is not None
        assert login.password == "s3cret-pass"
        assert broker.section is None
    with pytest.raises(ConfigError, match="mqtt://host:port"):
        async with demo_broker(load_town(), "mqtts://127.0.0.1:8883"):
            pass
