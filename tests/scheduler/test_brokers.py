"""The site file → broker credentials and ACL rules (pure; the real broker is in tests/e2e)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kernel.errors import ConfigError
from protocols.mqtt.config import BusConfig
from protocols.mqtt.telemetry import telemetry_topic
from protocols.mqtt.topics import filter_matches, validate_filter
from protocols.streetlight import LightTopics
from scheduler.brokers import (
    CLIENT_AVAILABILITY,
    BrokerClient,
    mosquitto_acl,
    mosquitto_password_line,
    site_broker_clients,
)
from scheduler.site import Site, load_site, site_from_data

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"


def site_with(broker: dict[str, Any] | None = None, **lighting: Any) -> Site:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    if broker is not None:
        data["broker"] = broker
    data["lighting"].update(lighting)
    return site_from_data(data, "site.yaml")


def may(client: BrokerClient, access: str, topic: str) -> bool:
    return any(
        g.access == access and filter_matches(validate_filter(g.topic), topic)
        for g in client.grants
    )


def by_name(clients: list[BrokerClient]) -> dict[str, BrokerClient]:
    return {c.username: c for c in clients}


def test_the_example_site_gives_the_controller_each_luminaire_and_its_network_server() -> None:
    clients = by_name(site_broker_clients(load_site(EXAMPLE)))
    assert clients["waldstadt-controller"].role == "controller"
    nodes = [c for c in clients.values() if c.role == "node"]
    assert [n.username for n in nodes] == [f"waldweg-{i:02d}" for i in range(1, 7)]
    assert clients["chirpstack"].role == "network_server"  # derived: the lighting has sensors
    assert len(clients) == 8


@pytest.mark.parametrize(
    ("who", "access", "topic", "allowed"),
    [
        # the controller commands every node and reads what they and the devices report
        ("waldstadt-controller", "write", "waldstadt/lights/waldweg-01/cmd", True),
        ("waldstadt-controller", "write", "waldstadt/lights/waldweg-06/schedule", True),
        ("waldstadt-controller", "read", "waldstadt/lights/waldweg-03/state", True),
        ("waldstadt-controller", "read", "waldstadt/devices/pv-7/telemetry", True),
        ("waldstadt-controller", "read", "application/1/device/70b3d57ed0000001/event/up", True),
        ("waldstadt-controller", "read", "v3/app@ttn/devices/radar/up", True),
        # ... but never speaks for a sensor or a device
        ("waldstadt-controller", "write", "application/1/device/70b3d57ed0000001/event/up", False),
        ("waldstadt-controller", "write", "waldstadt/devices/pv-7/telemetry", False),
        ("waldstadt-controller", "write", "waldstadt/lights/waldweg-01/state", False),
        # a node: its own reports, its own commands, nothing else
        ("waldweg-01", "write", "waldstadt/lights/waldweg-01/state", True),
        ("waldweg-01", "write", "waldstadt/lights/waldweg-01/availability", True),
        ("waldweg-01", "read", "waldstadt/lights/waldweg-01/cmd", True),
        ("waldweg-01", "read", "waldstadt/lights/waldweg-01/schedule", True),
        ("waldweg-01", "write", "waldstadt/lights/waldweg-01/cmd", False),
        ("waldweg-01", "write", "waldstadt/lights/waldweg-02/cmd", False),
        ("waldweg-01", "write", "waldstadt/lights/waldweg-02/state", False),
        ("waldweg-01", "read", "waldstadt/lights/waldweg-02/cmd", False),
        ("waldweg-01", "write", "waldstadt/devices/waldweg-01/telemetry", False),
        # the network server: uplinks only
        ("chirpstack", "write", "application/1/device/70b3d57ed0000001/event/up", True),
        ("chirpstack", "write", "v3/app@ttn/devices/radar/up", False),
        ("chirpstack", "read", "application/1/device/70b3d57ed0000001/event/up", False),
        ("chirpstack", "write", "waldstadt/lights/waldweg-01/cmd", False),
    ],
)
def test_who_may_do_what(who: str, access: str, topic: str, allowed: bool) -> None:
    clients = by_name(site_broker_clients(load_site(EXAMPLE)))
    assert may(clients[who], access, topic) is allowed


def test_telemetry_devices_publish_only_their_own_topic() -> None:
    site = site_with({"telemetry_devices": ["pv-7", "meter-8"]})
    clients = by_name(site_broker_clients(site))
    pv = clients["pv-7"]
    assert pv.role == "telemetry"
    assert may(pv, "write", telemetry_topic("pv-7"))
    assert not may(pv, "write", telemetry_topic("meter-8"))
    assert not may(pv, "read", telemetry_topic("pv-7"))
    assert not may(pv, "write", LightTopics().cmd("waldweg-01"))


def test_a_gateway_speaks_for_its_nodes_which_get_no_credential_of_their_own() -> None:
    site = site_with(
        {"gateways": [{"username": "segment-ctl", "luminaires": ["waldweg-01", "waldweg-02"]}]}
    )
    clients = by_name(site_broker_clients(site))
    gateway = clients["segment-ctl"]
    assert gateway.speaks_for == ("waldweg-01", "waldweg-02")
    assert "waldweg-01" not in clients
    assert "waldweg-03" in clients
    assert may(gateway, "write", LightTopics().state("waldweg-02"))
    assert may(gateway, "read", LightTopics().cmd("waldweg-01"))
    assert not may(gateway, "write", LightTopics().state("waldweg-03"))
    assert not may(gateway, "write", LightTopics().cmd("waldweg-01"))


def test_a_gateway_for_a_segment_covers_all_its_luminaires() -> None:
    site = site_with({"gateways": [{"username": "street", "segments": ["waldweg"]}]})
    clients = by_name(site_broker_clients(site))
    assert len(clients["street"].speaks_for) == 6
    assert [c.role for c in clients.values()].count("node") == 0


def test_each_network_the_sensors_use_gets_its_network_server() -> None:
    sensors = [
        {"id": "waldweg-radar", "segment": "waldweg", "street": "Waldweg", "pole": 1},
        {"id": "70b3d57ed0000a01", "segment": "waldweg", "street": "Waldweg", "pole": 4,
         "network": "tts"},
    ]  # fmt: skip
    clients = by_name(site_broker_clients(site_with(sensors=sensors)))
    assert may(clients["chirpstack"], "write", "application/1/device/x/event/up")
    assert may(clients["tts"], "write", "v3/app@ttn/devices/radar/up")
    assert not may(clients["tts"], "write", "application/1/device/x/event/up")
    no_sensors = by_name(site_broker_clients(site_with(sensors=[])))
    assert not [c for c in no_sensors.values() if c.role == "network_server"]


def test_listed_network_servers_replace_the_derived_ones() -> None:
    servers = [{"username": "tts-bridge", "network": "tts"}]
    clients = by_name(site_broker_clients(site_with({"network_servers": servers})))
    assert "chirpstack" not in clients
    assert may(clients["tts-bridge"], "write", "v3/app@ttn/devices/radar/up")
    assert not may(clients["tts-bridge"], "write", "application/1/device/x/event/up")
    assert "tts-bridge" not in by_name(site_broker_clients(site_with({"network_servers": []})))


@pytest.mark.parametrize(
    ("broker", "lighting", "key", "reason"),
    [
        ({"gateways": [{"username": "g", "segments": ["nowhere"]}]}, {},
         "broker.gateways.0.segments.0", "no segment 'nowhere'"),
        ({"gateways": [{"username": "g", "luminaires": ["x-99"]}]}, {},
         "broker.gateways.0.luminaires.0", "no luminaire 'x-99'"),
        ({"gateways": [{"username": "a", "luminaires": ["waldweg-01"]},
                       {"username": "b", "segments": ["waldweg"]}]}, {}, "broker.gateways.1",
         "already spoken for by gateway 'a'"),
        ({"telemetry_devices": ["waldweg-02"]}, {}, "broker.telemetry_devices.0",
         "already used by lighting.luminaires.1.id"),
        ({"controller": "chirpstack"}, {}, "broker.network_servers.0.username",
         "already used by broker.controller"),
        ({}, {"luminaires": [{"id": "Waldweg 1", "segment": "waldweg", "street": "Waldweg",
                              "pole": 1, "rated_power_w": 28}]},
         "lighting.luminaires.0.id", "cannot be a broker username"),
    ],
)  # fmt: skip
def test_references_and_usernames_are_checked(
    broker: dict[str, Any], lighting: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as err:
        site_broker_clients(site_with(broker, **lighting))
    assert err.value.field == key
    assert reason in err.value.reason


def test_the_site_file_refuses_a_bad_broker_section() -> None:
    with pytest.raises(ConfigError, match=r"broker\.gateways\.0"):
        site_with({"gateways": [{"username": "g"}]})  # speaks for nobody
    with pytest.raises(ConfigError, match=r"broker\.telemetry_devices\.0"):
        site_with({"telemetry_devices": ["a:b"]})  # ':' splits Mosquitto's password file
    with pytest.raises(ConfigError, match=r"broker\.controler"):
        site_with({"controler": "x"})


def test_the_acl_has_no_anonymous_rule_and_one_user_block_per_credential() -> None:
    clients = site_broker_clients(load_site(EXAMPLE))
    acl = mosquitto_acl(clients, "site.yaml").splitlines()
    rules = [line for line in acl if line and not line.startswith("#")]
    first_user = next(i for i, line in enumerate(rules) if line.startswith("user "))
    assert rules[:first_user] == [f"pattern write {CLIENT_AVAILABILITY}"]  # no 'topic' line
    assert [r for r in rules if r.startswith("user ")] == [f"user {c.username}" for c in clients]
    assert not any("%u" in r for r in rules)
    assert sum(r.startswith("topic ") for r in rules) == sum(len(c.grants) for c in clients)


def test_the_liveness_pattern_is_the_bus_s_default_will_topic() -> None:
    assert CLIENT_AVAILABILITY.replace("%c", "node-7") == BusConfig(client_id="node-7").will_topic


def test_a_password_line_is_pbkdf2_sha512_in_mosquitto_s_format() -> None:
    salt = bytes(range(12))
    line = mosquitto_password_line("waldweg-01", "s3cret", salt, iterations=101)
    user, rest = line.split(":", 1)
    _, kind, rounds, salt_b64, hash_b64 = rest.split("$")
    assert (user, kind, rounds) == ("waldweg-01", "7", "101")
    assert base64.b64decode(salt_b64) == salt
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101, 64)
    assert base64.b64decode(hash_b64) == expected
    with pytest.raises(ConfigError):
        mosquitto_password_line("a:b", "x", salt)
