"""What the bus hands to handlers, and how it accounts for messages it cannot use.

A message that matches several routes is acknowledged (PUBACK, in manual-ack mode) only when
every route has released it; :class:`_Delivery` counts that down.

Reasons for a malformed or unusable message (keys of :meth:`MalformedStats.counts`):

* ``too_large`` -- larger than the route's ``max_bytes``: refused before it is parsed;
* ``invalid_json`` -- the payload is not JSON (or not UTF-8);
* ``invalid_payload`` -- JSON, but the route's model refused it (the field is named), e.g. a
  boolean or a string where a number belongs (telemetry validates strictly);
* ``undecodable`` -- the handler raised :class:`~kernel.errors.PayloadError` (e.g. a
  LoRaWAN frame of the wrong length);
* a reason of its own -- the handler raised :class:`MessageRefused` with that ``code``
  (``too_many_readings``, ``unknown_fport``, ``no_dev_eui`` …);
* ``handler_error`` -- the handler raised anything else (a bug; logged with traceback).

Each is logged once as a warning per (filter, reason, field), later ones at debug level, and
counted; listeners (:meth:`MalformedStats.listen`) see every one (``/metrics`` counts them).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from kernel.errors import PayloadError
from protocols.mqtt.topics import validate_filter

log = logging.getLogger("protocols.mqtt.bus")

M = TypeVar("M")


class _Delivery:
    """One received message; sends its PUBACK when the last route releases it."""

    __slots__ = ("_pending", "_send", "mid", "qos")

    def __init__(self, send: Callable[[int, int], None], mid: int, qos: int, routes: int) -> None:
        self._send = send
        self.mid = mid
        self.qos = qos
        self._pending = routes

    def release(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._send(self.mid, self.qos)


class Inbound(Generic[M]):
    """A validated message for one route. ``ack()`` is idempotent."""

    __slots__ = ("_acked", "_delivery", "payload", "qos", "retain", "topic")

    def __init__(self, topic: str, payload: M, retain: bool, qos: int, delivery: _Delivery) -> None:
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self._delivery = delivery
        self._acked = False

    def ack(self) -> None:
        """Acknowledge: in manual-ack mode the broker may forget the message once every route
        that took it has acknowledged. Call it after the message is safe (committed)."""
        if not self._acked:
            self._acked = True
            self._delivery.release()

    @property
    def acked(self) -> bool:
        return self._acked


class MessageRefused(PayloadError):
    """A message refused for a reason of its own (``code``, a key of
    :meth:`MalformedStats.counts`), naming the field."""

    def __init__(self, source: str, field: str, code: str, reason: str) -> None:
        self.code = code
        super().__init__(source, field, reason)


@dataclass(frozen=True)
class Route(Generic[M]):
    """One subscription: messages on ``topic_filter`` are decoded and handed to ``handler``.
    A payload over ``max_bytes`` is refused as ``too_large`` before it is decoded."""

    topic_filter: str
    decode: Callable[[bytes | bytearray | str], M]
    handler: Callable[[Inbound[M]], Awaitable[None]]
    ack: str
    max_bytes: int | None = None
    levels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", validate_filter(self.topic_filter))
        if self.max_bytes is not None:
            object.__setattr__(self, "decode", _bounded(self.decode, self.max_bytes))


def _bounded(
    decode: Callable[[bytes | bytearray | str], M], max_bytes: int
) -> Callable[[bytes | bytearray | str], M]:
    def bounded(raw: bytes | bytearray | str) -> M:
        if len(raw) > max_bytes:
            raise MessageRefused(
                "message", "$", "too_large", f"{len(raw)} bytes, at most {max_bytes}"
            )
        return decode(raw)

    return bounded


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    topic: str
    reason: str
    field: str
    detail: str


def classify(exc: BaseException) -> tuple[str, str, str]:
    """(reason, field, detail) of an exception raised while validating or handling."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        first = errors[0] if errors else None
        if first is None:
            return "invalid_payload", "$", str(exc)
        if first["type"] == "json_invalid":
            return "invalid_json", "$", first["msg"]
        loc = ".".join(str(p) for p in first["loc"]) or "$"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return "invalid_payload", loc, f"{first['msg']}{more}"
    if isinstance(exc, MessageRefused):
        return exc.code, exc.field, exc.reason
    if isinstance(exc, PayloadError):
        return "undecodable", exc.field, exc.reason
    if isinstance(exc, ValueError | UnicodeDecodeError):
        return "invalid_payload", "$", str(exc)
    return "handler_error", "$", f"{type(exc).__name__}: {exc}"


#: Called with (topic filter, reason) for every message :class:`MalformedStats` records.
Listener = Callable[[str, str], None]


class MalformedStats:
    """Counts per reason; logs the first message per (filter, reason, field) as a warning, the
    rest at debug level, so a device that sends garbage every second does not flood the log.

    At most ``log_keys`` (filter, reason, field) keys are remembered (fields come from the
    senders: ``values.<any channel>``); beyond that, a reason not yet logged for its filter
    is still logged once as a warning."""

    def __init__(self, recent: int = 100, log_keys: int = 1000) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._logged: set[tuple[str, str, str]] = set()
        self._logged_reasons: set[tuple[str, str]] = set()
        self._log_keys = log_keys
        self._listeners: list[Listener] = []
        self.recent: collections.deque[MalformedRecord] = collections.deque(maxlen=recent)

    def listen(self, listener: Listener) -> None:
        """Call ``listener(topic_filter, reason)`` for every message recorded from now on (it
        must not raise and must not block)."""
        self._listeners.append(listener)

    def record(
        self,
        topic_filter: str,
        topic: str,
        reason: str,
        field: str,
        detail: str,
        *,
        exc: BaseException | None = None,
    ) -> None:
        self._counts[reason] += 1
        self.recent.append(MalformedRecord(topic, reason, field, detail))
        for listener in self._listeners:
            listener(topic_filter, reason)
        first = self._first(topic_filter, reason, field)
        level = logging.WARNING if first else logging.DEBUG
        exc_info: Any = exc if reason == "handler_error" and first else None
        log.log(level, "dropped message on %s (%s): field %r: %s", topic, reason, field, detail,
                exc_info=exc_info)  # fmt: skip

    def _first(self, topic_filter: str, reason: str, field: str) -> bool:
        key = (topic_filter, reason, field)
        if key in self._logged:
            return False
        by_reason = (topic_filter, reason)
        if len(self._logged) < self._log_keys:
            self._logged.add(key)
            self._logged_reasons.add(by_reason)
            return True
        if by_reason in self._logged_reasons:
            return False
        self._logged_reasons.add(by_reason)  # bounded: filters × reasons
        return True

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    @property
    def total(self) -> int:
        return sum(self._counts.values())
