"""The bus's receive and write plumbing below aiomqtt (protocols.mqtt.wire), on a real broker.

The acknowledgements and publishes are written by :class:`~protocols.mqtt.wire.EagerWriter`
once per loop iteration, and handed to aiomqtt's selector writer only when the socket is full;
messages come through :class:`~protocols.mqtt.wire.Inbox` straight from paho."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiomqtt

from protocols.mqtt import Backoff, Bus, BusConfig, Inbound


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
    """Messages read from the socket in one chunk are all handled, and acks written in bursts
    all leave: a new connection under the same persistent session gets none of the messages
    again, and later ones arrive in order."""
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
            # well below the keepalive (30 s): packets that arrived in one read and wait in
            # memory must be handled without the socket becoming readable again
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
