"""Where the bus reaches below aiomqtt's public API, and why: the receive path's per-message cost.

aiomqtt drives paho from the event loop: paho reads one packet per readable event and calls
``on_message``; aiomqtt turns that into its own ``Message``, puts it into an ``asyncio.Queue``,
and ``async for message in client.messages`` creates a task per message and waits for it
together with the disconnect future. A PUBACK (or a publish) that paho queues makes aiomqtt
register the socket for writing through ``call_soon_threadsafe`` (a wake-up write to the loop's
self-pipe), the selector then reports the socket writable one iteration later, and paho writes
and unregisters it again: two ``epoll_ctl`` calls, a self-pipe round trip and three loop
iterations for every acknowledgement. Measured (``scripts/bench mqtt``), bypassing both took the
bus from ~128 to ~70 µs of CPU per telemetry message (the bare aiomqtt loop: ~60 µs), and
reading the socket in chunks (below) to ~35 µs.

* :class:`Inbox` takes paho's messages directly (``on_message`` of the paho client) into a
  deque; the receive loop waits on one future only when the deque is empty, and ends with
  :class:`aiomqtt.MqttError` when aiomqtt reports the connection lost, as ``client.messages``
  does.
* :class:`EagerWriter` writes what paho queued at the end of the current loop iteration (one
  ``call_soon`` per iteration, however many acks or publishes were queued in it), and hands over
  to aiomqtt's selector-driven writer only when the socket cannot take everything (its buffer is
  full) or writing fails -- then aiomqtt's writer reports the error as before. A flush of
  several packets is corked (Linux ``TCP_CORK``) so that they leave in one segment.

* :class:`BufferedReader` gives paho's byte-sized reads from one ``recv`` of whatever the
  socket holds, and reads the packets left in memory in the same loop iteration.

They use paho's documented client callbacks; what they reach through is aiomqtt's
``Client._client`` (the paho client) and ``Client._disconnected`` (aiomqtt 2.x), paho's queue of
outgoing packets (``_out_packet``: does a flush write more than one?) and its socket read
(``_sock_recv``, replaced on the instance). Tests over a real broker cover these paths
(``tests/protocols/mqtt/test_mqtt_wire.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
from typing import Any

import aiomqtt
import paho.mqtt.client as paho_mqtt

Message = paho_mqtt.MQTTMessage


class Inbox:
    """Received messages of one connection, in arrival order, straight from paho.

    Create it before the client connects: a persistent session's queued messages arrive right
    after the CONNACK, before the receive loop runs."""

    __slots__ = ("_client", "_waiter", "_watched", "queue")

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        #: Messages not yet taken; the receive loop pops from the left without awaiting.
        self.queue: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._watched: asyncio.Future[None] | None = None
        client._client.on_message = self._on_message

    def _on_message(self, _client: Any, _userdata: Any, message: Message) -> None:
        self.queue.append(message)
        self._wake()

    def _wake(self, _fut: object = None) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Return when a message is queued; raise :class:`aiomqtt.MqttError` once the
        connection is lost (messages still queued then are left: they were not acknowledged,
        so the broker delivers them again)."""
        while True:
            # aiomqtt makes a new future when it (re)connects; watch the current one
            lost = self._client._disconnected
            if lost.done():
                cause = None if lost.cancelled() else lost.exception()
                raise aiomqtt.MqttError("Disconnected during message iteration") from cause
            if self.queue:
                return
            if lost is not self._watched:
                self._watched = lost
                lost.add_done_callback(self._wake)
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None


class EagerWriter:
    """Write paho's queued packets once per loop iteration instead of via the selector."""

    __slots__ = (
        "_delegated", "_loop", "_paho", "_register", "_scheduled", "_thread", "_unregister",
    )  # fmt: skip

    def __init__(self, client: aiomqtt.Client) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        paho = self._paho = client._client
        #: aiomqtt's own callbacks: add / remove a selector writer for the socket.
        register, unregister = paho.on_socket_register_write, paho.on_socket_unregister_write
        if register is None or unregister is None:
            raise RuntimeError("aiomqtt did not install its socket write callbacks")
        self._register: paho_mqtt.CallbackOnSocket = register
        self._unregister: paho_mqtt.CallbackOnSocket = unregister
        self._scheduled = False
        self._delegated = False
        paho.on_socket_register_write = self._on_register_write
        paho.on_socket_unregister_write = self._on_unregister_write

    def _on_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        # paho calls this once when it queues a packet and no write is pending. From another
        # thread (aiomqtt connects in an executor) leave it to aiomqtt's thread-safe path.
        if threading.get_ident() != self._thread:
            self._delegate(client, userdata, sock)
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _on_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        if self._delegated:
            self._delegated = False
            self._unregister(client, userdata, sock)

    def _delegate(self, client: Any, userdata: Any, sock: Any) -> None:
        self._delegated = True
        self._register(client, userdata, sock)

    def _flush(self) -> None:
        self._scheduled = False
        paho = self._paho
        if self._delegated:  # the selector writer is on; it writes what was queued since
            return
        sock = paho.socket()
        if sock is None:
            return
        # Several packets (the acks of a committed batch, a window of publishes): paho sends
        # each with its own send(); corked, they leave as one TCP segment instead of one each
        # (TCP_NODELAY is on), which saves the broker as much work as us.
        cork = sock if isinstance(sock, socket.socket) and len(paho._out_packet) > 1 else None
        try:
            if cork is not None:
                _set_cork(cork, 1)
            paho.loop_write()
        except Exception:  # noqa: BLE001 -- aiomqtt's writer meets it again and reports it
            self._delegate(paho, paho.user_data_get(), sock)
            return
        finally:
            if cork is not None:
                _set_cork(cork, 0)
        if paho.want_write():  # the socket's buffer is full: wait until it is writable
            self._delegate(paho, paho.user_data_get(), sock)


class BufferedReader:
    """Read the socket in chunks and serve paho's small reads from memory.

    paho reads a packet with ``recv(1)`` for the type, ``recv(1)`` per length byte and one
    ``recv`` for the rest: four system calls per telemetry message, and one packet per
    readable event. Here one ``recv`` takes whatever the socket holds (Mosquitto has at most
    its in-flight window of QoS 1 messages on the way), and the packets left in memory are
    read at the end of the same loop iteration -- the selector cannot see them."""

    __slots__ = ("_buf", "_client", "_loop", "_paho", "_recv_socket", "_scheduled")

    CHUNK = 65536

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._loop = asyncio.get_running_loop()
        paho = self._paho = client._client
        self._buf = bytearray()
        self._scheduled = False
        self._recv_socket = paho._sock_recv
        paho._sock_recv = self._recv  # type: ignore[method-assign]

    def _recv(self, bufsize: int) -> bytes:
        buf = self._buf
        if not buf:
            data = self._recv_socket(self.CHUNK)  # raises what paho expects (BlockingIOError)
            if len(data) <= bufsize:
                return data  # b"" is the end of the stream
            buf += data
        out = bytes(buf[:bufsize])
        del buf[:bufsize]
        if buf and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)
        return out

    def _drain(self) -> None:
        self._scheduled = False
        paho = self._paho
        try:
            while self._buf and paho.socket() is not None:
                if paho.loop_read() != paho_mqtt.MQTT_ERR_SUCCESS:
                    return
        except Exception as exc:  # noqa: BLE001 -- as aiomqtt's reader: the connection is lost
            lost = self._client._disconnected
            if not lost.done():
                lost.set_exception(exc)


_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux


def _set_cork(sock: socket.socket, on: int) -> None:
    if _CORK is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, on)


def set_no_delay(client: aiomqtt.Client) -> None:
    """Switch Nagle's algorithm off: paho leaves it on, and a small QoS 1 publish after a
    received message then waits 10–40 ms for the peer's delayed ACK (measured in
    ``bench lighting_mqtt``). The broker needs the same on its side (Mosquitto:
    ``set_tcp_nodelay true``)."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
