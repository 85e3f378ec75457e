"""``mqtts://`` on the wire: the service's connection (settings → ``bus_config``) to a real
Mosquitto with the generated credentials and ACL and a TLS listener, seen through a TCP relay
that keeps every byte the client sends.

Over TLS the CONNECT (and with it the username and password) is not on the wire; over plain
``mqtt://`` through the same relay it is (the control that shows the capture would see it).
An ``mqtts://`` URL pointed at a plain listener, or at a broker whose certificate the CA did
not sign, never connects and never sends the CONNECT in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.commands.broker import BrokerFiles, write_broker_files
from app.demo.broker import MosquittoProcess, mosquitto_binary
from kernel.errors import BrokerUnavailable
from protocols.mqtt import Bus, HealthState
from protocols.mqtt.embedded import free_port
from protocols.streetlight import LightTopics
from scheduler.broker_connection import bus_config
from scheduler.brokers import site_broker_clients
from scheduler.settings import Settings
from scheduler.site import load_site
from tests.e2e.tls_pki import Pki, make_pki

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"
CONTROLLER = "waldstadt-controller"
TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake


@dataclass(frozen=True)
class TlsBroker:
    tls_port: int
    plain_port: int
    pki: Pki
    files: BrokerFiles

    @property
    def password(self) -> str:
        return self.files.passwords[CONTROLLER]


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[TlsBroker]:
    """One Mosquitto: a TLS listener that wants a client certificate, and a plain one."""
    if mosquitto_binary() is None or shutil.which("openssl") is None:
        pytest.fail("mosquitto and openssl are needed for the TLS tests (.ci/run installs them)")
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-mqtts-"))
    try:
        files = write_broker_files(site_broker_clients(load_site(EXAMPLE)), folder, "site.yaml")
        (folder / "pki").mkdir(mode=0o755)
        pki = make_pki(folder / "pki")
        plain_port = free_port()
        listener = (
            f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
            f"require_certificate true\nlistener {plain_port} 127.0.0.1\n"
        )
        with MosquittoProcess(files, listener_conf=listener) as broker:
            yield TlsBroker(broker.port, plain_port, pki, files)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Relay:
    """127.0.0.1:``port`` → 127.0.0.1:``target``, keeping what clients send in ``sent``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = bytearray()
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if keep:
                    self.sent += data
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, True)),
            asyncio.create_task(self._pipe(up_reader, writer, False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


def settings(url: str, password: str, **tls: Path) -> Settings:
    return Settings(
        mode="demo",
        broker_url=url,
        broker_username=CONTROLLER,
        broker_password=password,
        broker_client_id=f"tls-{uuid.uuid4().hex[:10]}",
        **{k: str(v) for k, v in tls.items()},  # type: ignore[arg-type]
    )


async def test_over_mqtts_the_login_is_not_on_the_wire(tls_broker: TlsBroker) -> None:
    pki, password = tls_broker.pki, tls_broker.password
    over_tls, in_clear = Relay(tls_broker.tls_port), Relay(tls_broker.plain_port)
    async with over_tls.running(), in_clear.running():
        tls_settings = settings(f"mqtts://127.0.0.1:{over_tls.port}", password,
                                broker_ca_file=pki.ca, broker_cert_file=pki.client_cert,
                                broker_key_file=pki.client_key)  # fmt: skip
        plain_settings = settings(f"mqtt://127.0.0.1:{in_clear.port}", password)
        for s in (tls_settings, plain_settings):
            async with Bus(bus_config(s)) as bus:
                await bus.wait_connected(10)
                # the controller's right, over the encrypted connection and the plain one
                await bus.publish_confirmed(LightTopics().cmd("waldweg-01"), b"{}")
    secret = password.encode()
    assert over_tls.sent[0] == TLS_HANDSHAKE
    assert CONTROLLER.encode() not in over_tls.sent
    assert secret not in over_tls.sent
    assert b"MQTT" not in over_tls.sent  # the CONNECT's protocol name
    assert in_clear.sent[0] == 0x10  # CONNECT: the capture sees what is sent in clear ...
    assert CONTROLLER.encode() in in_clear.sent
    assert secret in in_clear.sent  # ... which is why mqtt:// is for loopback only


@pytest.mark.parametrize("case", ["plain listener", "unknown CA"])
async def test_mqtts_never_connects_unverified_nor_sends_the_login_in_clear(
    tls_broker: TlsBroker, case: str
) -> None:
    pki = tls_broker.pki
    if case == "plain listener":
        relay, ca = Relay(tls_broker.plain_port), pki.ca
    else:
        relay, ca = Relay(tls_broker.tls_port), pki.other_ca
    async with relay.running():
        s = settings(f"mqtts://127.0.0.1:{relay.port}", tls_broker.password, broker_ca_file=ca,
                     broker_cert_file=pki.client_cert, broker_key_file=pki.client_key)  # fmt: skip
        async with Bus(bus_config(s)) as bus:
            with pytest.raises(BrokerUnavailable) as err:
                await bus.wait_connected(3)
            assert bus.health.state is HealthState.DEGRADED
            assert bus.health.connects == 0
    reason = str(err.value)
    print(f"\nmqtts:// against a {case}: {reason}")
    if case == "unknown CA":
        assert "TLS: certificate verify failed, the broker is not trusted" in reason
    else:
        assert "TLS handshake failed, is it a TLS listener?" in reason
    assert relay.sent, "the client tried"
    assert relay.sent[0] == TLS_HANDSHAKE
    assert CONTROLLER.encode() not in relay.sent
    assert tls_broker.password.encode() not in relay.sent
    assert b"MQTT" not in relay.sent
