"""What the bus hands to handlers, and how it accounts for messages it cannot use.

A message that matches several routes is acknowledged (PUBACK, in manual-ack mode) only when
every route has released it; :class:`_Delivery` counts that down.

Reasons for a malformed or unusable message (keys of :meth:`MalformedStats.counts`):

* ``invalid_json`` -- the payload is not JSON (or not UTF-8);
* ``invalid_payload`` -- JSON, but the route's model refused it (the field is named);
* ``undecodable`` -- the handler raised :class:`~kernel.errors.PayloadError` (e.g. a
  LoRaWAN frame of the wrong length);
* ``handler_error`` -- the handler raised anything else (a bug; logged with traceback).
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


@dataclass(frozen=True)
class Route(Generic[M]):
    topic_filter: str
    decode: Callable[[bytes | bytearray | str], M]
    handler: Callable[[Inbound[M]], Awaitable[None]]
    ack: str
    levels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", validate_filter(self.topic_filter))


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
    if isinstance(exc, PayloadError):
        return "undecodable", exc.field, exc.reason
    if isinstance(exc, ValueError | UnicodeDecodeError):
        return "invalid_payload", "$", str(exc)
    return "handler_error", "$", f"{type(exc).__name__}: {exc}"


class MalformedStats:
    """Counts per reason; logs the first message per (filter, reason, field) as a warning, the
    rest at debug level, so a device that sends garbage every second does not flood the log."""

    def __init__(self, recent: int = 100, log_keys: int = 1000) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._logged: set[tuple[str, str, str]] = set()
        self._log_keys = log_keys
        self.recent: collections.deque[MalformedRecord] = collections.deque(maxlen=recent)

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
        key = (topic_filter, reason, field)
        first = key not in self._logged and len(self._logged) < self._log_keys
        if first:
            self._logged.add(key)
        level = logging.WARNING if first else logging.DEBUG
        exc_info: Any = exc if reason == "handler_error" and first else None
        log.log(level, "dropped message on %s (%s): field %r: %s", topic, reason, field, detail,
                exc_info=exc_info)  # fmt: skip

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    @property
    def total(self) -> int:
        return sum(self._counts.values())
