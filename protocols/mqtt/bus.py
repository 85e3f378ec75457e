"""The MQTT bus: one broker connection that survives the broker, owned by a TaskGroup.

``async with Bus(BusConfig(client_id="waldstadt-ingest-1")) as bus:`` starts a supervisor task
that connects, publishes ``online`` (retained) on the availability topic, (re-)subscribes every
registered filter with QoS 1, and then runs two tasks per connection: the receive loop and the
outbox drain. When the connection drops, the health turns *degraded* with the reason, and the
supervisor reconnects after a capped, jittered delay (:class:`~kernel.backoff.Backoff`).
Leaving the context publishes ``offline`` and disconnects; a client that dies without
disconnecting gets ``offline`` from its last will.

Sessions are persistent (MQTT 3.1.1 ``clean_session=False``, MQTT 5 ``clean_start=False`` with a
session expiry), keyed by the stable ``client_id``: the broker keeps the subscriptions and
queues QoS 1 messages while the client is away. Outbound messages go through a bounded outbox
that keeps them while disconnected; an item leaves the outbox only after the broker's PUBACK,
so delivery is at-least-once (after a reconnect a message may arrive twice -- consumers rely on
ids and timestamps, not on exactly-once).

Receiving: :meth:`Bus.subscribe` registers a pydantic model and a handler per topic filter.
A payload that is not JSON or fails validation is counted per reason, logged once per
(filter, reason, field) with the topic and the field, and acknowledged -- it never stops the
subscription and never disturbs other messages. Handlers run one message at a time, in order.

Acknowledgement: the PUBACK for a QoS 1 message is sent only when every route that took it
has released it (paho's manual-ack mode) -- so a message that was received but not yet handled
when the connection dropped is redelivered, not lost (an automatic ack would have acknowledged
it on arrival). Routes subscribed with ``ack="auto"`` release when
their handler returns; with ``BusConfig(manual_ack=True)`` routes may subscribe with
``ack="manual"`` and call :meth:`Inbound.ack` themselves, e.g. after the database commit.

The connection itself is :class:`~protocols.mqtt.transport.MqttConnection` (paho's protocol
code on a socket loop of our own; its docstring says why, and what it costs per message).
TLS is ``BusConfig(tls=...)``.

An ack that comes after the connection was lost is dropped: the broker redelivers the
message on the next connection. The broker sends at most its in-flight window (Mosquitto:
``max_inflight_messages``, default 20) of unacknowledged messages, so commit in small batches.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel

from kernel.errors import BrokerUnavailable, ConfigError
from protocols.mqtt.config import OFFLINE, ONLINE, BusConfig, BusHealth, BusStats, HealthState
from protocols.mqtt.inbound import Inbound, MalformedStats, Route, _Delivery, classify
from protocols.mqtt.topics import filter_matches
from protocols.mqtt.transport import MqttConnection

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
AckMode = Literal["auto", "manual"]


@dataclass(slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    done: asyncio.Future[None] | None = None


H = TypeVar("H")
Handler = Callable[[Inbound[H]], Awaitable[None]]


class Bus:
    """An async context manager around one broker connection; reusable, not re-entrant.

    Leaving the context does not wait for the outbox: call :meth:`flush` first when queued
    messages must reach the broker."""

    def __init__(self, config: BusConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.malformed = MalformedStats()
        self._rng = rng or random.Random()
        self._routes: list[Route[Any]] = []
        self._route_cache: dict[str, list[Route[Any]]] = {}
        self._client: MqttConnection | None = None
        self._generation = 0
        self._subscribed: set[str] = set()
        #: MQTT 5 subscription identifiers: a message carries the ids of the filters it
        #: matched, so overlapping filters (delivered once per subscription) are told apart.
        self._filter_ids: dict[str, int] = {}
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._outbox_ready = asyncio.Event()
        self._outbox_space = asyncio.Event()
        self._outbox_space.set()
        self._outbox_empty = asyncio.Event()
        self._outbox_empty.set()
        self._connected = asyncio.Event()
        self._state = HealthState.STOPPED
        self._reason: str | None = None
        self._connects = 0
        self._received = 0
        self._handled = 0
        self._published = 0
        self._tg: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._tg is not None:
            raise RuntimeError(f"bus {self.config.client_id}: already entered (not re-entrant)")
        self._state, self._reason = HealthState.STARTING, None
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._supervisor = self._tg.create_task(
            self._supervise(), name=f"mqtt-bus:{self.config.client_id}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        client = self._client
        if client is not None:
            with contextlib.suppress(BrokerUnavailable, asyncio.TimeoutError):
                async with asyncio.timeout(5):
                    await client.publish(self.config.will_topic, OFFLINE, qos=1, retain=True)
        if self._supervisor is not None:
            self._supervisor.cancel()
        tg, self._tg = self._tg, None
        try:
            await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._state, self._reason = HealthState.STOPPED, None
            self._connected.clear()

    @property
    def health(self) -> BusHealth:
        return BusHealth(self._state, self._reason, self._connects, len(self._outbox))

    @property
    def stats(self) -> BusStats:
        return BusStats(self._received, self._handled, self._published, self.malformed.counts())

    async def wait_connected(self, timeout_s: float = 30.0) -> None:
        """Wait for a connection, or raise :class:`BrokerUnavailable` naming the last reason."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError as exc:
            raise BrokerUnavailable(
                self.config.broker, f"not connected after {timeout_s} s: {self._reason}"
            ) from exc

    # -- publishing ----------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Queue a message; it is sent when connected and kept until the broker acknowledges it.

        Waits only when the outbox is full (back-pressure, never silent loss)."""
        await self._enqueue(_Outgoing(topic, _as_bytes(payload), qos, retain))

    async def publish_confirmed(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Like :meth:`publish`, but return only after the broker acknowledged (QoS 1)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._enqueue(_Outgoing(topic, _as_bytes(payload), qos, retain, done))
        await done

    async def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued message has been acknowledged by the broker."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._outbox_empty.wait()
        except TimeoutError as exc:
            raise BrokerUnavailable(
                self.config.broker, f"{len(self._outbox)} messages still queued after {timeout_s} s"
            ) from exc

    async def _enqueue(self, item: _Outgoing) -> None:
        while len(self._outbox) >= self.config.outbox_max:
            self._outbox_space.clear()
            await self._outbox_space.wait()
        self._outbox.append(item)
        self._outbox_empty.clear()
        self._outbox_ready.set()

    # -- subscribing ---------------------------------------------------------------------

    async def subscribe(
        self,
        topic_filter: str,
        model: type[M],
        handler: Handler[M],
        *,
        ack: AckMode = "auto",
        max_bytes: int | None = None,
    ) -> None:
        """Route messages matching ``topic_filter`` through ``model`` to ``handler`` (QoS 1).

        The filter is (re-)subscribed on every connection. ``ack="manual"`` needs
        ``BusConfig(manual_ack=True)``; the handler then calls ``inbound.ack()`` itself.
        A payload over ``max_bytes`` is refused (``too_large``) before it is parsed."""
        if ack == "manual" and not self.config.manual_ack:
            raise ConfigError("ack", f"{topic_filter}: manual ack needs BusConfig(manual_ack=True)")
        route = Route(topic_filter, model.model_validate_json, handler, ack, max_bytes)
        await self._add_route(route)

    async def subscribe_raw(self, topic_filter: str, handler: Handler[bytes]) -> None:
        """Route the bare payload bytes (e.g. availability ``online``/``offline``)."""
        await self._add_route(Route(topic_filter, _raw_bytes, handler, "auto"))

    async def _add_route(self, route: Route[Any]) -> None:
        topic_filter = route.topic_filter
        self._routes.append(route)
        self._route_cache.clear()
        client = self._client
        if client is not None and topic_filter not in self._subscribed:
            self._subscribed.add(topic_filter)
            with contextlib.suppress(BrokerUnavailable):
                await self._subscribe_filter(client, topic_filter)

    async def _subscribe_filter(self, client: MqttConnection, topic_filter: str) -> None:
        sub_id = None
        if self.config.protocol == "5":
            sub_id = self._filter_ids.setdefault(topic_filter, len(self._filter_ids) + 1)
        await client.subscribe(topic_filter, 1, sub_id)

    def _routes_for(self, topic: str) -> list[Route[Any]]:
        routes = self._route_cache.get(topic)
        if routes is None:
            routes = [r for r in self._routes if filter_matches(r.levels, topic)]
            if len(self._route_cache) > 50_000:
                self._route_cache.clear()
            self._route_cache[topic] = routes
        return routes

    # -- connection ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        name = self.config.client_id
        while True:
            try:
                # the connection takes messages from the CONNACK on: a persistent session's
                # queued ones follow at once, before the receive loop runs
                async with MqttConnection(self.config) as client:
                    attempt = 0
                    await self._on_connected(client)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(client), name=f"mqtt-rx:{name}")
                        tg.create_task(self._drain(client), name=f"mqtt-tx:{name}")
            except* BrokerUnavailable as group:
                reason = "; ".join(dict.fromkeys(_reasons(group)))
                self._on_lost(reason)
            delay_s = self.config.backoff.delay_s(attempt + 1, self._rng)
            attempt += 1
            await asyncio.sleep(delay_s)

    async def _on_connected(self, client: MqttConnection) -> None:
        self._generation += 1
        self._subscribed = set()
        await client.publish(self.config.will_topic, ONLINE, qos=1, retain=True)
        for topic_filter in dict.fromkeys(r.topic_filter for r in self._routes):
            self._subscribed.add(topic_filter)
            await self._subscribe_filter(client, topic_filter)
        self._client = client
        self._connects += 1
        if self._state is HealthState.DEGRADED:
            log.info("MQTT %s: connected again to %s", self.config.client_id, self.config.broker)
        self._state, self._reason = HealthState.CONNECTED, None
        self._connected.set()

    def _on_lost(self, reason: str) -> None:
        self._client = None
        self._connected.clear()
        if self._state is not HealthState.DEGRADED:
            log.warning("MQTT %s: connection to %s lost: %s", self.config.client_id,
                        self.config.broker, reason)  # fmt: skip
        self._state, self._reason = HealthState.DEGRADED, reason

    async def _drain(self, client: MqttConnection) -> None:
        window = self.config.publish_window
        while True:
            if not self._outbox:
                self._outbox_empty.set()
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            batch = list(itertools.islice(self._outbox, window))
            acked = [client.publish(i.topic, i.payload, i.qos, i.retain) for i in batch]
            await asyncio.wait(acked)  # all done: acknowledged, or failed by a lost connection
            errors = [e for e in (f.exception() for f in acked) if e is not None]
            if errors:
                raise errors[0]  # the connection is lost; the batch stays in the outbox
            for _ in batch:
                item = self._outbox.popleft()
                if item.done is not None and not item.done.done():
                    item.done.set_result(None)
            self._published += len(batch)
            self._outbox_space.set()

    async def _receive(self, client: MqttConnection) -> None:
        send_ack = self._ack_sender(client, self._generation)
        queue, lost = client.messages, client.lost
        while True:
            if not queue or lost.done():
                await client.wait_message()  # raises once the connection is lost
            message = queue.popleft()
            self._received += 1
            topic = message.topic
            routes = self._routes_for(topic)
            if ids := message.subscription_ids:
                routes = [r for r in routes if self._filter_ids.get(r.topic_filter) in ids]
            delivery = _Delivery(send_ack, message.mid, message.qos, len(routes))
            if not routes:
                delivery.release()
                continue
            raw = message.payload
            for route in routes:
                await self._deliver(route, topic, raw, message.retain, message.qos, delivery)

    async def _deliver(
        self,
        route: Route[Any],
        topic: str,
        raw: bytes | bytearray | str,
        retain: bool,
        qos: int,
        delivery: _Delivery,
    ) -> None:
        try:
            model = route.decode(raw)
        except ValueError as exc:
            self.malformed.record(route.topic_filter, topic, *classify(exc))
            delivery.release()
            return
        inbound = Inbound(topic, model, retain, qos, delivery)
        try:
            await route.handler(inbound)
            self._handled += 1
        except Exception as exc:  # noqa: BLE001 -- a handler bug must not stop the stream
            reason, fld, detail = classify(exc)
            self.malformed.record(route.topic_filter, topic, reason, fld, detail, exc=exc)
            inbound.ack()
        else:
            if route.ack == "auto":
                inbound.ack()

    def _ack_sender(self, client: MqttConnection, generation: int) -> Callable[[int, int], None]:
        def send(mid: int, qos: int) -> None:
            # An ack for an earlier connection is meaningless: the broker redelivers instead.
            if generation == self._generation and self._client is client:
                client.ack(mid, qos)

        return send


def _reasons(exc: BaseException) -> list[str]:
    """Why a connection ended: the reasons of the errors in a (nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return [r for e in exc.exceptions for r in _reasons(e)]
    return [exc.reason if isinstance(exc, BrokerUnavailable) else str(exc)]


def _raw_bytes(raw: bytes | bytearray | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload
