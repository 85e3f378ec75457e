"""A simulated LoRaWAN traffic sensor that publishes like a network server would.

Every ``window_s`` (600 s: the 10-minute count of the traffic-adaptive lighting rule) of the
injected clock, the sensor counts vehicles and its "network server" publishes the uplink on
MQTT, as a ChirpStack v4 event (default) or a The Things Stack v3 message, with the frame in the
fPort 10 codec of :mod:`protocols.lorawan.codecs`. Optionally it also sends presence events
(fPort 11) at the moments vehicles pass.

Traffic follows a daily curve in the site's local time: a night floor, a morning peak around
07:30 and a broader evening peak around 17:00, lower on weekends; counts in a window are
Poisson distributed around the curve (the noise), drawn from a seeded generator so a test or
the demo can replay a day.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from kernel.clock import Clock
from protocols.lorawan.codecs import (
    PRESENCE_FPORT,
    TRAFFIC_FPORT,
    PresenceEvent,
    TrafficCount,
    encode_presence,
    encode_traffic,
)
from protocols.mqtt.bus import Bus

Network = Literal["chirpstack", "tts"]


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    """Vehicles per hour: ``night_per_h`` floor plus two Gaussian peaks (local time)."""

    night_per_h: float = 12.0
    morning_peak_per_h: float = 480.0
    evening_peak_per_h: float = 560.0
    daytime_per_h: float = 220.0
    weekend_factor: float = 0.6

    def rate_per_h(self, local: datetime) -> float:
        h = local.hour + local.minute / 60.0 + local.second / 3600.0
        day = self.daytime_per_h * _bump(h, 13.0, 3.5)
        morning = self.morning_peak_per_h * _bump(h, 7.5, 1.1)
        evening = self.evening_peak_per_h * _bump(h, 17.0, 1.6)
        rate = self.night_per_h + day + morning + evening
        return rate * (self.weekend_factor if local.weekday() >= 5 else 1.0)


def _bump(h: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((h - centre) / width) ** 2)


@dataclass(frozen=True, slots=True)
class SensorIdentity:
    dev_eui: str  # 16 hex digits
    device_name: str
    application_id: str = "waldstadt-traffic"
    tenant_id: str = "waldstadt"


def chirpstack_event(
    ident: SensorIdentity, f_port: int, f_cnt: int, frame: bytes, at: datetime
) -> bytes:
    """A ChirpStack v4 ``event/up`` JSON as its MQTT integration sends it (proto3 JSON:
    ``fCnt`` 0 is omitted)."""
    body: dict[str, object] = {
        "deduplicationId": str(uuid.uuid4()),
        "time": _iso(at),
        "deviceInfo": {
            "tenantId": ident.tenant_id,
            "tenantName": "Waldstadt",
            "applicationId": ident.application_id,
            "applicationName": "traffic",
            "deviceProfileName": "traffic-counter",
            "deviceName": ident.device_name,
            "devEui": ident.dev_eui,
            "tags": {"sim": "true"},
        },
        "devAddr": "01020304",
        "adr": True,
        "dr": 5,
        "fPort": f_port,
        "confirmed": False,
        "data": base64.b64encode(frame).decode(),
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -97, "snr": 7.5, "nsTime": _iso(at)}],
        "txInfo": {"frequency": 868100000},
    }
    if f_cnt:
        body["fCnt"] = f_cnt
    return json.dumps(body, separators=(",", ":")).encode()


def tts_message(
    ident: SensorIdentity, f_port: int, f_cnt: int, frame: bytes, at: datetime
) -> bytes:
    """A The Things Stack v3 ``up`` message JSON."""
    up: dict[str, object] = {
        "f_port": f_port,
        "frm_payload": base64.b64encode(frame).decode(),
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -101, "snr": 6.25}],
        "settings": {"data_rate": {"lora": {"spreading_factor": 7}}},
        "received_at": _iso(at),
    }
    if f_cnt:
        up["f_cnt"] = f_cnt
    body = {
        "end_device_ids": {
            "device_id": ident.device_name,
            "application_ids": {"application_id": ident.application_id},
            "dev_eui": ident.dev_eui,
        },
        "correlation_ids": [f"as:up:{uuid.uuid4().hex}"],
        "received_at": _iso(at),
        "uplink_message": up,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def uplink_topic(ident: SensorIdentity, network: Network) -> str:
    if network == "chirpstack":
        return f"application/{ident.application_id}/device/{ident.dev_eui}/event/up"
    return f"v3/{ident.application_id}@{ident.tenant_id}/devices/{ident.device_name}/up"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TrafficSensor:
    """One sensor; :meth:`run` publishes until cancelled."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        ident: SensorIdentity,
        *,
        network: Network = "chirpstack",
        profile: TrafficProfile | None = None,
        window_s: int = 600,
        presence: bool = False,
        zone: str = "Europe/Berlin",
        seed: int = 0,
        battery_pct: int = 96,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.ident = ident
        self.network = network
        self.profile = profile or TrafficProfile()
        self.window_s = window_s
        self.presence = presence
        self.zone = ZoneInfo(zone)
        self.battery_pct = battery_pct
        self.sensor_fault = False
        self.f_cnt = 0
        self.sent: list[TrafficCount] = []
        self._rng = np.random.default_rng(seed)

    def expected_count(self, window_start: datetime) -> float:
        """Mean vehicles in the window that starts at ``window_start`` (midpoint rate)."""
        mid = window_start + timedelta(seconds=self.window_s / 2)
        return self.profile.rate_per_h(mid.astimezone(self.zone)) * self.window_s / 3600.0

    async def run(self) -> None:
        now = self.clock.now()
        epoch_s = now.timestamp()
        window_start = datetime.fromtimestamp(epoch_s - epoch_s % self.window_s, UTC)
        while True:
            window_end = window_start + timedelta(seconds=self.window_s)
            count = int(self._rng.poisson(self.expected_count(window_start)))
            if self.presence:
                await self._presence_events(window_start, count)
            await self._sleep_until(window_end)
            await self.publish_count(count, window_end)
            window_start = window_end

    async def publish_count(self, count: int, at: datetime) -> TrafficCount:
        frame = TrafficCount(
            min(count, 0xFFFF),
            self.window_s,
            self.battery_pct,
            sensor_fault=self.sensor_fault,
        )
        self.sent.append(frame)
        await self._uplink(TRAFFIC_FPORT, encode_traffic(frame), at)
        return frame

    async def _presence_events(self, start: datetime, count: int) -> None:
        offsets = sorted(self._rng.uniform(0.0, self.window_s, size=count).tolist())
        for offset_s in offsets:
            at = start + timedelta(seconds=offset_s)
            await self._sleep_until(at)  # a late event is still sent, with its own time
            speed = int(np.clip(self._rng.normal(38.0, 8.0), 5, 120))
            await self._uplink(PRESENCE_FPORT, encode_presence(PresenceEvent(1, speed)), at)

    async def _sleep_until(self, at: datetime) -> None:
        delay_s = (at - self.clock.now()).total_seconds()
        if delay_s > 0:
            await self.clock.sleep(delay_s)

    async def _uplink(self, f_port: int, frame: bytes, at: datetime) -> None:
        build = chirpstack_event if self.network == "chirpstack" else tts_message
        payload = build(self.ident, f_port, self.f_cnt, frame, at)
        self.f_cnt += 1
        # TTS publishes at QoS 0; ChirpStack's integration uses the configured QoS (1 here).
        qos = 0 if self.network == "tts" else 1
        await self.bus.publish(uplink_topic(self.ident, self.network), payload, qos=qos)
