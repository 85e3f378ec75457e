"""Configuration, health and counters of the MQTT bus (plain data)."""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass, field
from typing import Literal

from kernel.backoff import Backoff
from kernel.errors import ConfigError

#: The retained availability payloads: after every connect, and as the last will.
ONLINE = b"online"
OFFLINE = b"offline"


class HealthState(enum.StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"
    DEGRADED = "degraded"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class BusHealth:
    """What an operator sees: the state, why it is not connected, and the backlog."""

    state: HealthState
    reason: str | None
    connects: int
    outbox: int


@dataclass(frozen=True, slots=True)
class BusConfig:
    """One connection. ``client_id`` must be stable across restarts (persistent session)."""

    client_id: str
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    #: Retained ``online``/``offline``; default ``waldstadt/clients/{client_id}/availability``.
    availability_topic: str | None = None
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    #: MQTT 5 only: how long the broker keeps the session after a disconnect, in s.
    session_expiry_s: int = 86_400
    keepalive_s: int = 30
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.2, cap_s=10.0))
    #: Allow routes with ``ack="manual"`` (acknowledge after commit).
    manual_ack: bool = False
    #: QoS 1 publishes in flight at once while draining the outbox.
    publish_window: int = 64
    #: Messages kept while disconnected; ``publish`` waits when the outbox is full.
    outbox_max: int = 100_000
    #: TLS (``mqtts://``): the context verifies the broker (CA, host name) and may carry a
    #: client certificate (:func:`tls_context`). ``None``: plain TCP.
    tls: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.client_id or "/" in self.client_id or "+" in self.client_id:
            raise ConfigError("client_id", f"need a stable id without '/', got {self.client_id!r}")
        if self.publish_window < 1 or self.outbox_max < 1:
            raise ConfigError("publish_window", "publish_window and outbox_max must be >= 1")

    @property
    def will_topic(self) -> str:
        return self.availability_topic or f"waldstadt/clients/{self.client_id}/availability"

    @property
    def broker(self) -> str:
        return f"{self.host}:{self.port}"


def tls_context(
    ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """A client context that verifies the broker's certificate against ``ca_file`` (default:
    the system's CAs) and its host name, TLS 1.2 or newer; with ``cert_file`` (and
    ``key_file`` unless the key is in it) the client shows its own certificate."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


def connect_failure(exc: OSError | ValueError, tls: bool) -> str:
    """Why a connection attempt failed, in words an operator can act on: a failed TLS
    handshake says whether the certificate was refused or the listener speaks no TLS."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed, the broker is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError) or (tls and isinstance(exc, ConnectionResetError)):
        return f"TLS handshake failed, is it a TLS listener? ({exc})"
    return f"connect: {exc}"


@dataclass(frozen=True, slots=True)
class BusStats:
    received: int
    handled: int
    published: int
    malformed: dict[str, int]
