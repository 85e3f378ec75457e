"""A bare MQTT 5 client for the broker-security tests: what the broker answers, verbatim.

The bus hides a refused publish (MQTT 3.1.1 has no negative PUBACK) and retries a refused
connection; an attacker's view needs the broker's own reason codes: CONNACK ``Not
authorized`` (135) for a bad or missing login, PUBACK 135 for a publish the ACL refuses.
paho runs its network loop in a thread; the waits block, so async tests call them through
``asyncio.to_thread``.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho_mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

#: PUBACK/CONNACK reason codes below this are successes (0 Success, 16 No matching subscribers).
FAILURE = 0x80


class Probe:
    """One connection as ``username`` (``None``: anonymous)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        client_id: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.messages: list[tuple[str, bytes]] = []
        self._connack: ReasonCode | None = None
        self._connected = threading.Event()
        self._acks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._acked = threading.Condition()
        self._client = paho_mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:10]}",
            protocol=paho_mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any = None) -> None:
        self._connack = rc
        self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any = None) -> None:
        with self._acked:
            self._acks[mid] = rc
            self._acked.notify_all()

    def _on_subscribe(
        self, _c: Any, _u: Any, mid: int, rcs: list[ReasonCode], _p: Any = None
    ) -> None:
        with self._acked:
            self._subacks[mid] = rcs
            self._acked.notify_all()

    def _on_message(self, _c: Any, _u: Any, msg: paho_mqtt.MQTTMessage) -> None:
        self.messages.append((msg.topic, msg.payload))

    def connect(self, timeout_s: float = 10.0) -> int:
        """The CONNACK's reason code (0 = accepted, 135 = not authorized)."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout_s) or self._connack is None:
            raise TimeoutError(f"no CONNACK from {self.host}:{self.port} in {timeout_s} s")
        return int(self._connack.value)

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, timeout_s: float = 10.0
    ) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code (>= 128: refused)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self._acks, timeout_s):
                raise TimeoutError(f"no PUBACK for {topic} in {timeout_s} s")
            return int(self._acks.pop(info.mid).value)

    def subscribe(self, topic_filter: str, timeout_s: float = 10.0) -> int:
        """Subscribe at QoS 1; the SUBACK's reason code."""
        _, mid = self._client.subscribe(topic_filter, qos=1)
        with self._acked:
            if not self._acked.wait_for(lambda: mid in self._subacks, timeout_s):
                raise TimeoutError(f"no SUBACK for {topic_filter} in {timeout_s} s")
            return int(self._subacks.pop(mid)[0].value)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


__all__ = ["FAILURE", "Probe"]
