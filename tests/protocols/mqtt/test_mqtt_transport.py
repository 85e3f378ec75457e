"""The bus's own socket loop around paho (protocols.mqtt.transport), on a real broker.

Acknowledgements and publishes are written once per loop iteration and by a selector writer
only when the socket is full; a backlog is read in one go; a lost connection ends the receive
loop; the socket has TCP_NODELAY; TLS verifies the broker (and may show a client certificate)
and never falls back to plain TCP."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from protocols.mqtt import Backoff, Bus, BusConfig, HealthState, Inbound, tls_context
from protocols.mqtt.embedded import free_port, reachable
from tests.conftest import MOSQUITTO_BINARY


def config(broker: object, client_id: str, **kw: object) -> BusConfig:
    return BusConfig(
        client_id=client_id,
        host=broker.host,  # type: ignore[attr-defined]
        port=broker.port,  # type: ignore[attr-defined]
        availability_topic=f"{client_id}/availability",
        backoff=Backoff(initial_s=0.05, cap_s=0.5),
        **kw,  # type: ignore[arg-type]
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


async def test_every_ack_reaches_the_broker_so_the_session_redelivers_nothing(
    mqtt_broker: object, unique: str
) -> None:
    """A backlog read in one go is handled completely, and acks written in bursts all leave:
    a new connection under the same persistent session gets none of the messages again, and
    later ones arrive in order."""
    seen: list[bytes] = []

    async def handler(inbound: Inbound[bytes]) -> None:
        seen.append(inbound.payload)

    cid = f"acks-{unique[-12:]}"
    async with Bus(config(mqtt_broker, f"pub-{unique[-12:]}")) as pub:
        async with Bus(config(mqtt_broker, cid)) as sub:
            await sub.subscribe_raw(f"{unique}/n", handler)
            await sub.wait_connected()
            for i in range(500):
                await pub.publish(f"{unique}/n", b"%d" % i)
            await pub.flush(30)
            # well below the keepalive (30 s): packets already read must be handled without
            # the socket becoming readable again
            await eventually(lambda: len(seen) == 500, 10)
            await asyncio.sleep(0.1)  # the last acks leave at the end of their loop iteration
        assert seen == [b"%d" % i for i in range(500)]
        async with Bus(config(mqtt_broker, cid)) as sub:
            await sub.subscribe_raw(f"{unique}/n", handler)
            await sub.wait_connected()
            await pub.publish_confirmed(f"{unique}/n", b"after")
            await eventually(lambda: seen[-1] == b"after")
            await asyncio.sleep(0.3)
    assert seen[500:] == [b"after"]


async def test_a_burst_larger_than_the_socket_buffer_is_written_completely(
    mqtt_broker: object, unique: str
) -> None:
    """64 publishes of 256 kB in flight at once fill the socket: the rest is written when
    the socket drains (the selector path), nothing is lost or reordered."""
    got: list[bytes] = []

    async def handler(inbound: Inbound[bytes]) -> None:
        got.append(inbound.payload[:8])

    big = 256 * 1024
    async with (
        Bus(config(mqtt_broker, f"bsub-{unique[-12:]}")) as sub,
        Bus(config(mqtt_broker, f"bpub-{unique[-12:]}")) as pub,
    ):
        await sub.subscribe_raw(f"{unique}/big", handler)
        await sub.wait_connected()
        await pub.wait_connected()
        for i in range(100):
            await pub.publish(f"{unique}/big", (b"%08d" % i).ljust(big, b"."))
        await pub.flush(60)
        await eventually(lambda: len(got) == 100, 60)
        assert pub.stats.published >= 100
    assert got == [b"%08d" % i for i in range(100)]


async def test_a_lost_connection_ends_the_receive_loop_and_the_bus_reconnects(
    mqtt_broker: object, unique: str
) -> None:
    """Taking the client id over (the broker drops the older connection) is a lost connection:
    the receive loop ends with the reason, the bus reconnects and receives again."""
    seen: list[bytes] = []

    async def handler(inbound: Inbound[bytes]) -> None:
        seen.append(inbound.payload)

    cid = f"taken-{unique[-12:]}"
    async with Bus(config(mqtt_broker, cid)) as sub:
        await sub.subscribe_raw(f"{unique}/x", handler)
        await sub.wait_connected()
        assert sub.health.connects == 1
        host, port = mqtt_broker.host, mqtt_broker.port  # type: ignore[attr-defined]
        async with aiomqtt.Client(host, port, identifier=cid, clean_session=False):
            await eventually(lambda: sub.health.connects >= 2 or sub.health.reason is not None)
        await eventually(lambda: sub.health.connects >= 2)
        await sub.wait_connected()
        async with aiomqtt.Client(host, port) as probe:
            await probe.publish(f"{unique}/x", b"again", qos=1)
        await eventually(lambda: b"again" in seen)


async def test_the_socket_has_tcp_nodelay(mqtt_broker: object, unique: str) -> None:
    async with Bus(config(mqtt_broker, f"nodelay-{unique[-12:]}")) as bus:
        await bus.wait_connected()
        assert bus._client is not None
        sock = bus._client.raw_socket
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


# -- TLS against a Mosquitto of the test's own ---------------------------------------------


@dataclass(frozen=True)
class TlsBroker:
    host: str
    port: int
    kind: str
    ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign", cwd=d)  # fmt: skip


def _make_cert(d: Path, name: str, san: str) -> None:
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
             cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[TlsBroker]:
    """Mosquitto with a TLS listener that wants a client certificate from the test CA."""
    if MOSQUITTO_BINARY is None or shutil.which("openssl") is None:
        pytest.fail("mosquitto and openssl are needed for the TLS tests (.ci/run installs them)")
    d = Path(tempfile.mkdtemp(prefix="waldstadt-mqtts-"))
    d.chmod(0o755)  # mosquitto started as root reads the files as its own user
    _make_ca(d, "ca")
    _make_ca(d, "other")
    _make_cert(d, "server", "IP:127.0.0.1,DNS:localhost")
    _make_cert(d, "client", "DNS:client")
    for f in d.iterdir():
        f.chmod(0o644)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
        "require_certificate true\nlog_type none\n"
    )
    proc = subprocess.Popen(
        [MOSQUITTO_BINARY, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while not reachable("127.0.0.1", port, 0.2):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"mosquitto with TLS did not come up on port {port}")
            time.sleep(0.05)
        yield TlsBroker("127.0.0.1", port, "mosquitto", d / "ca.pem", d / "client.pem",
                        d / "client.key", d / "other.pem")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


async def test_tls_verifies_the_broker_and_shows_a_client_certificate(
    tls_broker: TlsBroker, unique: str
) -> None:
    tls = tls_context(str(tls_broker.ca), str(tls_broker.client_cert), str(tls_broker.client_key))
    got: list[bytes] = []

    async def handler(inbound: Inbound[bytes]) -> None:
        got.append(inbound.payload)

    async with Bus(config(tls_broker, f"tls-{unique[-12:]}", tls=tls)) as bus:
        await bus.subscribe_raw(f"{unique}/secret", handler)
        await bus.wait_connected(10)
        assert bus._client is not None
        assert isinstance(bus._client.raw_socket, ssl.SSLSocket)
        await bus.publish_confirmed(f"{unique}/secret", b"over tls")
        await eventually(lambda: got == [b"over tls"], 10)


@pytest.mark.parametrize("case", ["unknown CA", "no client certificate", "plain broker"])
async def test_tls_never_connects_unverified_nor_falls_back_to_plain_tcp(
    tls_broker: TlsBroker, mqtt_broker: object, unique: str, case: str
) -> None:
    if case == "unknown CA":
        tls = tls_context(str(tls_broker.other_ca), str(tls_broker.client_cert),
                          str(tls_broker.client_key))  # fmt: skip
        broker: object = tls_broker
    elif case == "no client certificate":
        tls, broker = tls_context(str(tls_broker.ca)), tls_broker
    else:  # a TLS client pointed at a plain listener must fail, not talk in clear
        tls, broker = tls_context(str(tls_broker.ca)), mqtt_broker
    async with Bus(config(broker, f"tlsno-{unique[-12:]}", tls=tls)) as bus:
        await eventually(lambda: bus.health.state is HealthState.DEGRADED, 10)
        await asyncio.sleep(0.5)  # several attempts with the backoff
        assert bus.health.connects == 0
        reason = bus.health.reason
    assert reason
    if case == "unknown CA":
        assert "certificate verify failed" in reason
