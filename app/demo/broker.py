"""The demo's broker: a Mosquitto of its own, run with the files ``waldstadt broker-config``
writes, so the demo runs with authentication and ACLs on, exactly as a site does.

The demo town's broker section (:func:`demo_broker_config`): the controller, one gateway
credential per street (the street's simulated luminaires share one connection, as behind a
segment controller) and one credential per LoRaWAN network server its sensors use. Nobody
connects anonymously; a street's gateway cannot command any lamp, nor report for another
street's; only the controller publishes commands.

Why Mosquitto and no longer the embedded amqtt broker: the demo then proves the generated
files themselves, and amqtt 0.12 leaks retained messages across topic filters (on every
connect it replays the retained messages matching *any* client's subscriptions, past its own
receive ACL), which cannot be fixed through its public API. ``--broker URL`` connects to a
broker of your own instead: every demo client logs in with the URL's user and password (if
any), under that broker's rules. Without ``mosquitto`` on the PATH and without ``--broker``,
the demo says so and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from app.commands.broker import BrokerFiles, write_broker_files
from kernel.errors import BrokerUnavailable, ConfigError
from lighting.config import LightingConfig
from protocols.mqtt.embedded import free_port, reachable
from scheduler.brokers import broker_clients
from scheduler.site.broker import DEFAULT_CONTROLLER, BrokerConfig
from sims.demo_site import demo_lighting_data
from sims.town import BrokerLogin, TownConfig, TownLogins

#: The broker's own account when it is started as root (it drops privileges to it).
BROKER_USER = "mosquitto"


def mosquitto_binary() -> str | None:
    """The ``mosquitto`` executable (Debian keeps it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


def street_username(street: str) -> str:
    """The gateway credential of a demo street's luminaires."""
    return f"street-{street}"


def demo_broker_config(town: TownConfig) -> dict[str, Any]:
    """The site file's ``broker:`` section for the demo town: a gateway per street; the
    network servers follow from the sensors' networks (named ``chirpstack``, ``tts``)."""
    return {
        "controller": DEFAULT_CONTROLLER,
        "gateways": [
            {"username": street_username(st.name), "segments": [st.name]} for st in town.streets
        ],
    }


class MosquittoProcess:
    """``with MosquittoProcess(files) as broker: broker.port`` — Mosquitto on loopback with
    the generated password file, ACL and settings. ``listener_conf`` adds lines to the
    listener (TLS: ``cafile``, ``certfile``, ``keyfile`` …)."""

    def __init__(
        self,
        files: BrokerFiles,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        listener_conf: str = "",
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise ConfigError(
                "mosquitto",
                "not found: install Mosquitto (apt install mosquitto) or give a broker URL",
            )
        self.binary = binary
        self.files = files
        self.host = host
        self.port = port or free_port(host)
        self.conf = files.out / "broker.conf"
        self.log = files.out / "mosquitto.log"
        self._listener_conf = listener_conf
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        """Start it and wait until it accepts connections (blocking)."""
        conf = f"listener {self.port} {self.host}\n{self._listener_conf.strip()}\n"
        conf += f"log_dest file {self.log}\npersistence false\n"
        conf += self._broker_user() + self.files.conf_file.read_text(encoding="utf-8")
        self.conf.write_text(conf, encoding="utf-8")
        self.log.touch()
        self._hand_over()
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not reachable(self.host, self.port, 0.2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(encoding="utf-8", errors="replace")[-600:]
                self.stop()
                raise BrokerUnavailable(f"{self.host}:{self.port}", f"mosquitto: {tail.strip()}")
            time.sleep(0.05)

    def _broker_user(self) -> str:
        """Started as root, Mosquitto drops to its own user; without one, it stays root."""
        if os.geteuid() != 0 or _uid(BROKER_USER) is not None:
            return ""
        return "user root\n"

    def _hand_over(self) -> None:
        """Started as root, Mosquitto reads its files as its own user: give them to it (the
        clear-text credentials stay root's)."""
        uid = _uid(BROKER_USER) if os.geteuid() == 0 else None
        if uid is None:
            return
        gid = pwd.getpwnam(BROKER_USER).pw_gid
        for path in (self.files.out, self.files.password_file, self.files.acl_file, self.log):
            os.chown(path, uid, gid)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _uid(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


@dataclass(frozen=True)
class DemoBroker:
    """Where the demo's clients connect, and as whom."""

    host: str
    port: int
    description: str
    controller: BrokerLogin | None
    town: TownLogins
    #: the site file's ``broker:`` section (``None`` with a broker of the user's own)
    section: Mapping[str, Any] | None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def demo_broker(town: TownConfig, broker_url: str | None) -> AsyncIterator[DemoBroker]:
    """The demo's own Mosquitto for ``town`` (credentials in a private temporary directory,
    removed at the end), or the broker at ``broker_url``."""
    if broker_url:
        yield _given_broker(broker_url)
        return
    section = demo_broker_config(town)
    lighting = LightingConfig.model_validate(demo_lighting_data(town))
    clients = broker_clients(BrokerConfig.model_validate(section), lighting)
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-demo-broker-"))
    try:
        files = write_broker_files(clients, folder, "the demo town")
        broker = MosquittoProcess(files)
        await asyncio.to_thread(broker.start)
        try:
            yield _own_broker(town, broker, files.passwords)
        finally:
            await asyncio.to_thread(broker.stop)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _own_broker(
    town: TownConfig, broker: MosquittoProcess, passwords: Mapping[str, str]
) -> DemoBroker:
    def login(username: str) -> BrokerLogin:
        return BrokerLogin(username, passwords[username])

    networks = {st.network for st in town.streets if st.sensor_dev_eui}
    logins = TownLogins(
        streets={st.name: login(street_username(st.name)) for st in town.streets},
        networks={net: login(net) for net in networks},
    )
    return DemoBroker(
        broker.host,
        broker.port,
        f"mosquitto on {broker.host}:{broker.port} (credentials and ACL on)",
        login(DEFAULT_CONTROLLER),
        logins,
        demo_broker_config(town),
    )


def _given_broker(broker_url: str) -> DemoBroker:
    parts = urlsplit(broker_url)
    if parts.scheme != "mqtt":
        raise ConfigError("--broker", f"the demo connects to mqtt://host:port, not {broker_url!r}")
    login = None
    if parts.username:
        login = BrokerLogin(parts.username, parts.password or "")
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    shown = f"{parts.scheme}://{host}:{port}"  # never the password
    return DemoBroker(host, port, shown, login, TownLogins(default=login), None)


__all__ = [
    "DemoBroker",
    "MosquittoProcess",
    "demo_broker",
    "demo_broker_config",
    "mosquitto_binary",
    "street_username",
]
