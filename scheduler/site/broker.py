"""The site file's ``broker:`` section: who connects to the MQTT broker besides the nodes.

The luminaires of the ``lighting:`` section are the streetlight nodes, each with a broker
credential of its own unless a gateway speaks for it; everything else that connects is named
here: the controller's username, the devices that publish telemetry over MQTT, the LoRaWAN
network servers and the gateways. ``waldstadt broker-config`` turns it into a Mosquitto
``password_file`` and ``acl_file`` (:mod:`scheduler.brokers`); the reference is
``docs/site.md`` and ``docs/broker.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from scheduler.site.fields import _Model

#: A broker username: it is a line's key in Mosquitto's ``password_file`` (no ``:``) and a
#: topic level in the ACL (no ``/``, ``+``, ``#`` or blanks).
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]

#: The service's username when the section does not name one: the default client id of the
#: service (``WALDSTADT_BROKER_CLIENT_ID``), so a default site needs no extra setting.
DEFAULT_CONTROLLER = "waldstadt-controller"


class NetworkServerConfig(_Model):
    """A LoRaWAN network server that publishes its uplinks to the site's broker."""

    username: Username
    network: Literal["chirpstack", "tts"]


class GatewayConfig(_Model):
    """One credential that speaks for many streetlight nodes (a segment controller, a
    LoRaWAN-to-MQTT gateway, a simulator): the luminaires of ``segments`` and ``luminaires``.
    Those nodes get no credential of their own."""

    username: Username
    segments: list[str] = Field(default_factory=list)
    luminaires: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _speaks_for_someone(self) -> GatewayConfig:
        if not self.segments and not self.luminaires:
            raise ValueError("a gateway needs segments or luminaires to speak for")
        return self


class BrokerConfig(_Model):
    """``network_servers`` ``None`` (not given): one per LoRaWAN network the lighting's
    sensors use, named after it (``chirpstack``, ``tts``); ``[]``: none."""

    controller: Username = DEFAULT_CONTROLLER
    telemetry_devices: list[Username] = Field(default_factory=list)
    network_servers: list[NetworkServerConfig] | None = None
    gateways: list[GatewayConfig] = Field(default_factory=list)


__all__ = ["DEFAULT_CONTROLLER", "BrokerConfig", "GatewayConfig", "NetworkServerConfig"]
