"""An embedded, anonymous MQTT broker (amqtt): the tests' fallback where no Mosquitto runs,
and the CPU benchmark's (``sims.cpu_town``). Not the demo's: the demo runs a Mosquitto with
credentials and ACL (``app.demo.broker``).

It runs in a daemon thread with its own event loop, so a busy controller loop cannot starve
the broker (and the broker cannot starve the controller). Production uses a real broker
(Mosquitto, EMQX …) configured with ``WALDSTADT_BROKER_URL``.

Known defect of amqtt 0.12, not reachable through its public API: on every connect it
replays the retained messages that match *any* client's subscriptions, not only the
connecting client's, and without its receive ACL; a subscriber may so get retained messages
of topics it never subscribed to. Code that meets this broker must ignore what it did not
ask for (the bus's routes do).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

from kernel.errors import BrokerUnavailable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """``with EmbeddedBroker() as b: ... b.port``: an anonymous amqtt broker on loopback."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"amqtt-{self.port}", daemon=True
        )
        self._broker: Any = None

    def start(self, timeout_s: float = 30.0) -> None:
        from amqtt.broker import Broker

        # amqtt logs every half-open probe connection (ours included) as an error; its own
        # failures still surface as BrokerUnavailable below.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        if not self._thread.is_alive():
            self._thread.start()

        async def _start() -> Any:
            broker = Broker(
                {
                    "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                    "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {}},
                }
            )
            await broker.start()
            return broker

        try:
            fut = asyncio.run_coroutine_threadsafe(_start(), self._loop)
            self._broker = fut.result(timeout_s)
        except Exception as exc:
            raise BrokerUnavailable(f"{self.host}:{self.port}", f"embedded broker: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        while not reachable(self.host, self.port, 0.2):
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"{self.host}:{self.port}", "embedded broker not reachable")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            fut.result(30)
            self._broker = None

    def close(self) -> None:
        self.stop()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
