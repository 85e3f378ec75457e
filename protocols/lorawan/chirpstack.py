"""ChirpStack v4 uplink events (MQTT integration, JSON marshaler).

Topic ``application/{applicationId}/device/{devEui}/event/up``. Fields used::

    deduplicationId   required   string (one event per frame, across gateways)
    time              optional   reception time; else the first rxInfo nsTime/gwTime
    deviceInfo        required   {tenantId, applicationId, deviceName, devEui (required), tags}
    fCnt              optional   proto3 JSON omits 0
    fPort             optional   omitted when 0 (MAC-only frame)
    data              optional   base64 FRMPayload; omitted when empty
    object            optional   decoded payload (only with a device-profile codec)
    rxInfo[]          optional   {gatewayId, rssi, snr, nsTime, gwTime}

Unknown fields are ignored; a missing required field is refused naming the field.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from kernel.errors import PayloadError
from protocols.lorawan.uplink import DEV_EUI, Uplink, b64decode_field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChirpStackDeviceInfo(_Model):
    tenantId: str = ""
    applicationId: str = ""
    deviceName: str = ""
    devEui: str = Field(pattern=DEV_EUI.pattern)
    tags: dict[str, str] = Field(default_factory=dict)


class ChirpStackRxInfo(_Model):
    gatewayId: str = ""
    rssi: float | None = None
    snr: float | None = None
    nsTime: AwareDatetime | None = None
    gwTime: AwareDatetime | None = None


class ChirpStackUplink(_Model):
    deduplicationId: str = Field(min_length=1)
    time: AwareDatetime | None = None
    deviceInfo: ChirpStackDeviceInfo
    fCnt: int = Field(default=0, ge=0, le=0xFFFFFFFF)
    fPort: int = Field(default=0, ge=0, le=255)
    data: str = ""
    object: dict[str, Any] | None = None
    rxInfo: list[ChirpStackRxInfo] = Field(default_factory=list)


def chirpstack_filter(application_id: str = "+") -> str:
    return f"application/{application_id}/device/+/event/up"


def chirpstack_uplink(event: ChirpStackUplink, source: str = "chirpstack") -> Uplink:
    """The network-neutral uplink of a validated event."""
    received = event.time
    if received is None:
        received = next((t for rx in event.rxInfo for t in (rx.nsTime, rx.gwTime) if t), None)
    if received is None:
        raise PayloadError(source, "time", "no reception time (time, rxInfo[].nsTime, gwTime)")
    rssis = [rx.rssi for rx in event.rxInfo if rx.rssi is not None]
    snrs = [rx.snr for rx in event.rxInfo if rx.snr is not None]
    info = event.deviceInfo
    return Uplink(
        network="chirpstack",
        dev_eui=info.devEui.lower(),
        device_name=info.deviceName,
        application_id=info.applicationId,
        f_port=event.fPort,
        f_cnt=event.fCnt,
        payload=b64decode_field(event.data, source, "data"),
        received_at=received.astimezone(UTC),
        decoded=event.object,
        rssi_dbm=max(rssis) if rssis else None,
        snr_db=max(snrs) if snrs else None,
        tags=dict(info.tags),
    )


def parse_chirpstack(raw: bytes | str, source: str = "chirpstack") -> Uplink:
    """Validate the JSON of an uplink event; errors name the field (``deviceInfo.devEui``)."""
    try:
        event = ChirpStackUplink.model_validate_json(raw)
    except ValidationError as exc:
        raise _payload_error(source, exc) from exc
    return chirpstack_uplink(event, source)


def _payload_error(source: str, exc: ValidationError) -> PayloadError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "$"
    return PayloadError(source, loc, err["msg"])
