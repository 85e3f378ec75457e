"""The bus switches Nagle's algorithm off on every connection (latency of small publishes)."""

from __future__ import annotations

import socket
from typing import Any

from protocols.mqtt.bus import Bus
from protocols.mqtt.config import BusConfig


async def test_bus_socket_has_tcp_nodelay(mqtt_broker: Any, unique: str) -> None:
    config = BusConfig(
        client_id=f"nodelay-{unique[-12:]}",
        host=mqtt_broker.host,
        port=mqtt_broker.port,
        availability_topic=f"{unique}/availability",
    )
    async with Bus(config) as bus:
        await bus.wait_connected()
        assert bus._client is not None
        sock = bus._client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
