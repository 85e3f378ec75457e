"""The generic "network server uplink → readings" path on the MQTT bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from kernel.readings import Reading
from protocols.lorawan.chirpstack import ChirpStackUplink, chirpstack_filter, chirpstack_uplink
from protocols.lorawan.codecs import DEFAULT_CODECS, Codec
from protocols.lorawan.tts import TtsUplink, tts_filter, tts_uplink
from protocols.lorawan.uplink import Uplink, uplink_readings
from protocols.mqtt.bus import Bus
from protocols.mqtt.inbound import Inbound

UplinkSink = Callable[[list[Reading], Uplink], Awaitable[None]]


async def subscribe_uplinks(
    bus: Bus,
    sink: UplinkSink,
    *,
    network: Literal["chirpstack", "tts"] = "chirpstack",
    topic_filter: str | None = None,
    codecs: Mapping[int, Codec] = DEFAULT_CODECS,
) -> None:
    """Decode every uplink on ``topic_filter`` (default: all applications of the network
    server) and hand its readings to ``sink``. A frame that its codec refuses is counted by
    the bus as ``undecodable`` with the field; the stream goes on.

    ``ack="manual"`` is not offered here because the sink sees the uplink, not the message:
    acknowledge-after-commit ingestion subscribes with :meth:`Bus.subscribe` directly."""
    if network == "chirpstack":

        async def handle_cs(inbound: Inbound[ChirpStackUplink]) -> None:
            uplink = chirpstack_uplink(inbound.payload, inbound.topic)
            await sink(uplink_readings(uplink, codecs), uplink)

        await bus.subscribe(topic_filter or chirpstack_filter(), ChirpStackUplink, handle_cs)
    else:

        async def handle_tts(inbound: Inbound[TtsUplink]) -> None:
            uplink = tts_uplink(inbound.payload, inbound.topic)
            await sink(uplink_readings(uplink, codecs), uplink)

        await bus.subscribe(topic_filter or tts_filter(), TtsUplink, handle_tts)
