"""Shared fixtures: a real MQTT broker for the protocol tests.

* ``mqtt_broker`` -- Mosquitto on 127.0.0.1:1883 when it answers, else an embedded amqtt broker
  on a free port (started once per session, in its own thread and event loop so that every
  test's loop can use it).
* ``restartable_broker`` -- always a broker of this test's own on a free port that the test can
  stop and start again: a ``mosquitto`` process with persistence (so sessions and queued QoS 1
  messages survive the restart) when the binary exists, else amqtt.

Tests use unique topic prefixes and client ids (``unique`` fixture) so concurrent runs against
the shared broker never see each other's messages.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from protocols.mqtt.embedded import EmbeddedBroker, free_port, reachable

pytest_plugins = ("tests.db_fixtures",)

MOSQUITTO_PORT = 1883
MOSQUITTO_BINARY = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    kind: str  # "mosquitto" or "amqtt"


def _wait_until_reachable(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reachable("127.0.0.1", port, 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"broker on 127.0.0.1:{port} did not come up within {timeout_s} s")


class _MosquittoProcess:
    """A mosquitto process on a free port with on-disk persistence in a temp dir."""

    def __init__(self, port: int) -> None:
        self.port = port
        # mosquitto started as root drops to its own user, which must reach and write the
        # database: pytest's tmp_path (mode 0700) is not reachable for it, so use /tmp.
        self._workdir = Path(tempfile.mkdtemp(prefix="waldstadt-mosquitto-"))
        self._workdir.chmod(0o777)
        self._conf = self._workdir / "mosquitto.conf"
        data = self._workdir
        self._conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 100000\n"
            "log_type none\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO_BINARY is not None
        self._proc = subprocess.Popen(
            [MOSQUITTO_BINARY, "-c", str(self._conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until_reachable(self.port)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM): mosquitto writes its persistence file on the way out."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


class RestartableBroker(Protocol):
    host: str
    port: int
    kind: str

    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass
class _Restartable:
    host: str
    port: int
    kind: str
    impl: EmbeddedBroker | _MosquittoProcess

    def stop(self) -> None:
        self.impl.stop()

    def start(self) -> None:
        self.impl.start()


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[BrokerAddress]:
    """A broker shared by the session: local Mosquitto if reachable, else embedded amqtt."""
    if reachable("127.0.0.1", MOSQUITTO_PORT):
        yield BrokerAddress("127.0.0.1", MOSQUITTO_PORT, "mosquitto")
        return
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    try:
        yield BrokerAddress("127.0.0.1", broker.port, "amqtt")
    finally:
        broker.close()


@pytest.fixture
def restartable_broker() -> Iterator[_Restartable]:
    """A broker of this test's own that it may ``stop()`` and ``start()`` again."""
    port = free_port()
    impl: EmbeddedBroker | _MosquittoProcess
    if MOSQUITTO_BINARY is not None:
        impl = _MosquittoProcess(port)
        kind = "mosquitto"
    else:
        impl = EmbeddedBroker(port=port)
        kind = "amqtt"
    impl.start()
    try:
        yield _Restartable("127.0.0.1", port, kind, impl)
    finally:
        with contextlib.suppress(Exception):
            impl.close()


@pytest.fixture
def unique() -> Iterator[str]:
    """A short unique token for topic prefixes and client ids of one test.

    Afterwards the shared broker on 1883 is tidied: retained messages under ``{unique}/`` and
    the retained availability of this test's clients are deleted, and those clients'
    persistent sessions are ended, so repeated runs do not pile up state on the broker."""
    token = uuid.uuid4().hex[:12]
    yield token
    if reachable("127.0.0.1", MOSQUITTO_PORT, 0.2):
        with contextlib.suppress(Exception):
            _tidy_broker("127.0.0.1", MOSQUITTO_PORT, token)


def _tidy_broker(host: str, port: int, token: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    retained: list[str] = []

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        if msg.retain and msg.payload and token in msg.topic:
            retained.append(msg.topic)

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tidy-{token}")
    c.on_message = on_message
    c.connect(host, port)
    c.loop_start()
    try:
        c.subscribe([(f"{token}/#", 0), ("waldstadt/clients/+/availability", 0)])
        time.sleep(0.3)  # retained messages arrive right after SUBACK
        infos = [c.publish(topic, b"", qos=1, retain=True) for topic in retained]
        for info in infos:
            info.wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    client_ids = [t.split("/")[2] for t in retained if t.startswith("waldstadt/clients/")]
    for client_id in client_ids:
        # Connecting with a clean session ends the persistent session of that client id.
        wipe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        wipe.connect(host, port)
        wipe.loop_start()
        wipe.disconnect()
        wipe.loop_stop()
