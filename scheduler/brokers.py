"""Broker credentials and access rules from the site file: who may publish and read what.

The site file knows every client of the broker (:mod:`scheduler.site.broker`), so the rules
are derived, never written by hand:

==================  ================================================  ==========================
client              may publish                                       may read
==================  ================================================  ==========================
controller          every node's ``cmd`` and ``schedule``             every node's ``state`` and
                                                                      ``availability``, all
                                                                      telemetry, all uplinks
streetlight node    its own ``state`` and ``availability``            its own ``cmd``, ``schedule``
gateway             the ``state``/``availability`` of its nodes       their ``cmd``, ``schedule``
telemetry device    its own ``{prefix}/devices/{id}/telemetry``       nothing
network server      its network's uplink topics                       nothing
anyone connected    ``waldstadt/clients/{client id}/availability``    nothing
anonymous           (refused at CONNECT)
==================  ================================================  ==========================

Device rights are written per username (``user`` blocks): Mosquitto's ``pattern`` lines
apply to every user, so ``waldstadt/lights/%u/state`` would also let a meter's credential
report a lamp. The one pattern is the connection's own liveness topic (``%c``, the bus's last
will), which every client needs and which names nobody else.

Everything here is pure: passwords and salts come in, text goes out (the files are written by
``waldstadt broker-config``, :mod:`app.commands.broker`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from kernel.errors import ConfigError
from lighting.config import LightingConfig
from protocols.lorawan import chirpstack_filter, tts_filter
from protocols.mqtt.telemetry import DEFAULT_PREFIX as TELEMETRY_PREFIX
from protocols.mqtt.telemetry import telemetry_filter, telemetry_topic
from protocols.streetlight import DEFAULT_PREFIX as LIGHT_PREFIX
from protocols.streetlight import LightTopics
from scheduler.site import Site
from scheduler.site.broker import BrokerConfig, NetworkServerConfig

Access = Literal["read", "write"]
Role = Literal["controller", "node", "gateway", "telemetry", "network_server"]

#: What a username may be (the site file's ``Username``): no ``:`` (the password file's
#: separator), no topic wildcards, separators or blanks.
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: A node id behind a gateway is only a topic level: no wildcards, separators or blanks.
_TOPIC_LEVEL = re.compile(r"[^/+#\s\x00]+")

#: PBKDF2-SHA512 rounds in the password file: Mosquitto 2's own default (``mosquitto_passwd``).
#: The passwords are 256-bit random secrets, which no number of rounds makes more or less
#: guessable; a small count keeps a thousand nodes reconnecting after a broker restart cheap.
MOSQUITTO_ITERATIONS = 101
#: Mosquitto 2's salt length in bytes.
MOSQUITTO_SALT_BYTES = 12

#: The liveness topic of every connection (``BusConfig.will_topic``'s default), ``%c`` = the
#: client id.
CLIENT_AVAILABILITY = "waldstadt/clients/%c/availability"


@dataclass(frozen=True, slots=True)
class Grant:
    """``access`` to a topic or topic filter (``+``/``#`` wildcards as in MQTT)."""

    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class BrokerClient:
    """One credential: its username, what it is, what it may do, whom it speaks for."""

    username: str
    role: Role
    grants: tuple[Grant, ...]
    speaks_for: tuple[str, ...] = ()


def controller_grants() -> tuple[Grant, ...]:
    """Commands and schedules to every node; every node's reports, telemetry and uplinks."""
    lights = LightTopics(LIGHT_PREFIX)
    return (
        Grant("write", lights.all("cmd")),
        Grant("write", lights.all("schedule")),
        Grant("read", lights.all("state")),
        Grant("read", lights.all("availability")),
        Grant("read", telemetry_filter(TELEMETRY_PREFIX)),
        Grant("read", chirpstack_filter()),
        Grant("read", tts_filter()),
    )


def node_grants(node_id: str) -> tuple[Grant, ...]:
    """A streetlight node: reports about itself, reads what is meant for it."""
    lights = LightTopics(LIGHT_PREFIX)
    return (
        Grant("write", lights.state(node_id)),
        Grant("write", lights.availability(node_id)),
        Grant("read", lights.cmd(node_id)),
        Grant("read", lights.schedule(node_id)),
    )


def uplink_filter(network: Literal["chirpstack", "tts"]) -> str:
    return chirpstack_filter() if network == "chirpstack" else tts_filter()


def site_broker_clients(site: Site) -> list[BrokerClient]:
    """Every credential the site's broker needs (see :func:`broker_clients`)."""
    return broker_clients(site.broker, site.lighting)


def broker_clients(broker: BrokerConfig, lighting: LightingConfig | None) -> list[BrokerClient]:
    """The controller, the gateways, the nodes no gateway speaks for, the telemetry devices
    and the network servers, in that order. A reference that does not hold or a username
    used twice is a :class:`ConfigError` naming the key path."""
    names = _Names()
    out = [BrokerClient(broker.controller, "controller", controller_grants())]
    names.take(broker.controller, "broker.controller")
    covered = _gateway_nodes(broker, lighting)
    for gi, gateway in enumerate(broker.gateways):
        nodes = covered[gi]
        grants = tuple(g for node in nodes for g in node_grants(node))
        out.append(BrokerClient(gateway.username, "gateway", grants, tuple(nodes)))
        names.take(gateway.username, f"broker.gateways.{gi}.username")
    spoken_for = {node for nodes in covered for node in nodes}
    for li, lum in enumerate(lighting.luminaires if lighting is not None else ()):
        if lum.id in spoken_for:
            continue
        where = f"lighting.luminaires.{li}.id"
        if not _USERNAME.fullmatch(lum.id):
            raise ConfigError(
                where,
                f"{lum.id!r} cannot be a broker username (letters, digits, '.', '_', '-'): "
                "let a gateway speak for it (broker.gateways)",
            )
        out.append(BrokerClient(lum.id, "node", node_grants(lum.id), (lum.id,)))
        names.take(lum.id, where)
    for di, device in enumerate(broker.telemetry_devices):
        grant = Grant("write", telemetry_topic(device, TELEMETRY_PREFIX))
        out.append(BrokerClient(device, "telemetry", (grant,), (device,)))
        names.take(device, f"broker.telemetry_devices.{di}")
    for ni, server in enumerate(_network_servers(broker, lighting)):
        grant = Grant("write", uplink_filter(server.network))
        out.append(BrokerClient(server.username, "network_server", (grant,)))
        names.take(server.username, f"broker.network_servers.{ni}.username")
    return out


class _Names:
    """Usernames taken so far, and where: one credential per username."""

    def __init__(self) -> None:
        self._where: dict[str, str] = {}

    def take(self, username: str, where: str) -> None:
        if username in self._where:
            raise ConfigError(
                where, f"username {username!r} is already used by {self._where[username]}"
            )
        self._where[username] = where


def _gateway_nodes(broker: BrokerConfig, lighting: LightingConfig | None) -> list[list[str]]:
    """Per gateway, the node ids it speaks for (its segments' luminaires, then the listed
    ones), each node under one gateway only."""
    luminaires = {lum.id: lum for lum in (lighting.luminaires if lighting is not None else ())}
    segments = {seg.id for seg in (lighting.segments if lighting is not None else ())}
    owner: dict[str, str] = {}
    out: list[list[str]] = []
    for gi, gateway in enumerate(broker.gateways):
        nodes: list[str] = []
        for si, segment in enumerate(gateway.segments):
            if segment not in segments:
                raise ConfigError(f"broker.gateways.{gi}.segments.{si}", f"no segment {segment!r}")
            nodes += [lum.id for lum in luminaires.values() if lum.segment == segment]
        for li, lum_id in enumerate(gateway.luminaires):
            if lum_id not in luminaires:
                where = f"broker.gateways.{gi}.luminaires.{li}"
                raise ConfigError(where, f"no luminaire {lum_id!r}")
            nodes.append(lum_id)
        for node in dict.fromkeys(nodes):
            if not _TOPIC_LEVEL.fullmatch(node):
                raise ConfigError(
                    f"broker.gateways.{gi}", f"luminaire id {node!r} is not a valid topic level"
                )
            if owner.get(node, gateway.username) != gateway.username:
                raise ConfigError(
                    f"broker.gateways.{gi}",
                    f"luminaire {node!r} is already spoken for by gateway {owner[node]!r}",
                )
            owner[node] = gateway.username
        out.append(list(dict.fromkeys(nodes)))
    return out


def _network_servers(
    broker: BrokerConfig, lighting: LightingConfig | None
) -> Sequence[NetworkServerConfig]:
    """The listed network servers; when none are listed, one per network the lighting's
    LoRaWAN sensors use (``lighting.sensors[].network``), named after it."""
    if broker.network_servers is not None:
        return broker.network_servers
    networks = sorted({s.network for s in lighting.sensors}) if lighting is not None else []
    return [NetworkServerConfig(username=net, network=net) for net in networks]


# -- Mosquitto's files ------------------------------------------------------------------------


def mosquitto_password_line(
    username: str, password: str, salt: bytes, iterations: int = MOSQUITTO_ITERATIONS
) -> str:
    """One line of Mosquitto 2's ``password_file``: ``user:$7$rounds$salt$hash``, the hash
    being PBKDF2-HMAC-SHA512 of the password over the salt (64 bytes; both base64), exactly
    what ``mosquitto_passwd`` writes."""
    if not _USERNAME.fullmatch(username):
        raise ConfigError("username", f"{username!r} cannot be a broker username")
    if len(salt) != MOSQUITTO_SALT_BYTES or iterations < 1:
        raise ConfigError("salt", f"need {MOSQUITTO_SALT_BYTES} bytes of salt and rounds >= 1")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    b64 = base64.b64encode
    return f"{username}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def mosquitto_acl(clients: Iterable[BrokerClient], source: str) -> str:
    """Mosquitto's ``acl_file``: the pattern for the connection's own liveness topic, then one
    ``user`` block per credential. No ``topic`` line precedes the first ``user`` line, so an
    anonymous client (were one let in) may do nothing."""
    lines = [
        f"# Mosquitto acl_file generated by `waldstadt broker-config` from {source}.",
        "# Do not edit: change the site file and run broker-config again.",
        "",
        "# every client may announce its own connection's liveness (its last will)",
        f"pattern write {CLIENT_AVAILABILITY}",
    ]
    for client in clients:
        lines += ["", f"# {_ROLE_NAMES[client.role]}" + _speaks_for(client)]
        lines.append(f"user {client.username}")
        lines += [f"topic {g.access} {g.topic}" for g in client.grants]
    return "\n".join(lines) + "\n"


_ROLE_NAMES: dict[Role, str] = {
    "controller": "the controller (Waldstadt)",
    "node": "streetlight node",
    "gateway": "gateway",
    "telemetry": "telemetry device",
    "network_server": "LoRaWAN network server",
}


def _speaks_for(client: BrokerClient) -> str:
    if client.role != "gateway":
        return ""
    shown = ", ".join(client.speaks_for[:5])
    more = len(client.speaks_for) - 5
    return f" for {len(client.speaks_for)} nodes: {shown}" + (f" … (+{more})" if more > 0 else "")


def mosquitto_conf(password_file: str, acl_file: str, source: str) -> str:
    """The part of ``mosquitto.conf`` that makes the broker Waldstadt's: no anonymous
    clients, the generated files, and the limits the site needs (README: TCP_NODELAY for the
    presence path, a deep queue for a restarting ingest process). TLS stays with the
    operator's listener (shown commented out)."""
    return f"""\
# Mosquitto settings generated by `waldstadt broker-config` from {source}.
# Include it from mosquitto.conf (include_dir) or copy it; reload with SIGHUP after re-running.
allow_anonymous false
password_file {password_file}
acl_file {acl_file}
set_tcp_nodelay true
max_queued_messages 100000

# TLS (mqtts://): a listener with the broker's certificate; clients verify it against the CA
# (WALDSTADT_BROKER_CA_FILE). Add require_certificate true to ask for client certificates.
#listener 8883
#cafile /etc/mosquitto/certs/ca.pem
#certfile /etc/mosquitto/certs/broker.pem
#keyfile /etc/mosquitto/certs/broker.key
"""


__all__ = [
    "CLIENT_AVAILABILITY",
    "MOSQUITTO_ITERATIONS",
    "MOSQUITTO_SALT_BYTES",
    "Access",
    "BrokerClient",
    "Grant",
    "Role",
    "broker_clients",
    "controller_grants",
    "mosquitto_acl",
    "mosquitto_conf",
    "mosquitto_password_line",
    "node_grants",
    "site_broker_clients",
    "uplink_filter",
]
