"""The process's broker connection from its settings; ``mqtts://`` means verified TLS, never
plain TCP.

The service (``app.service``) and ``waldstadt ingest`` (``scheduler.ingest``) connect with
:func:`bus_config`: the URL's host and port, the username and password, and
``tls=broker_tls(settings)``: ``None`` for an ``mqtt://`` URL, otherwise a context that
verifies the broker's certificate and host name against ``WALDSTADT_BROKER_CA_FILE`` (the
system's CAs when unset) and shows the client certificate of ``WALDSTADT_BROKER_CERT_FILE``
(and ``_KEY_FILE``) when given. The bus never falls back to plain TCP: a failed handshake is a
failed connection, retried with the backoff (``docs/mqtt.md``).
:class:`~scheduler.settings.Settings` already refused TLS files with an ``mqtt://`` URL.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from kernel.errors import ConfigError
from protocols.mqtt.config import BusConfig, tls_context
from scheduler.settings import Settings


def bus_config(
    settings: Settings, broker: tuple[str, int] | None = None, *, manual_ack: bool = True
) -> BusConfig:
    """The bus of the service or the ingest process: ``broker`` (host, port) overrides the
    URL's (the demo's broker); the client id is ``WALDSTADT_BROKER_CLIENT_ID``."""
    hp = broker or settings.broker_host_port
    if hp is None:
        raise ConfigError("WALDSTADT_BROKER_URL", "no broker configured", "environment")
    password = settings.broker_password.get_secret_value() if settings.broker_password else None
    return BusConfig(
        client_id=settings.broker_client_id,
        host=hp[0],
        port=hp[1],
        username=settings.broker_username,
        password=password,
        manual_ack=manual_ack,
        tls=broker_tls(settings),
    )


def uses_tls(settings: Settings) -> bool:
    """Whether the broker URL asks for TLS (``mqtts://``)."""
    return settings.broker_url is not None and urlsplit(settings.broker_url).scheme == "mqtts"


def broker_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of an ``mqtts://`` broker, ``None`` for ``mqtt://``. A file that does
    not load is a :class:`ConfigError` naming its variable."""
    if not uses_tls(settings):
        return None
    ca, cert, key = settings.broker_ca_file, settings.broker_cert_file, settings.broker_key_file
    try:
        return tls_context(ca, cert, key)
    except (OSError, ssl.SSLError) as exc:
        if _loads(ca):  # then the client certificate or its key is at fault
            with_key = " with WALDSTADT_BROKER_KEY_FILE" if key is not None else ""
            reason = f"cannot load the client certificate{with_key}: {exc}"
            raise ConfigError("WALDSTADT_BROKER_CERT_FILE", reason, "environment") from exc
        reason = f"cannot load the CA certificates: {exc}"
        raise ConfigError("WALDSTADT_BROKER_CA_FILE", reason, "environment") from exc


def _loads(ca: str | None) -> bool:
    try:
        tls_context(ca)
    except (OSError, ssl.SSLError):
        return False
    return True


__all__ = ["broker_tls", "bus_config", "uses_tls"]
