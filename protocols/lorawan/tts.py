"""The Things Stack v3 uplink messages (MQTT server, JSON).

Topic ``v3/{application_id}@{tenant_id}/devices/{device_id}/up`` (MQTT 3.1.1, QoS 0 on the
TTS side). Fields used::

    end_device_ids    required   {device_id (required), dev_eui, application_ids{application_id}}
    received_at       required   reception time by the network
    uplink_message    required   {f_port, f_cnt (omitted when 0), frm_payload (base64),
                                  decoded_payload, rx_metadata[{rssi, snr}]}

``dev_eui`` is optional in TTS (devices may be registered without it), but Waldstadt keys a
sensor's readings by its DevEUI (the one id both network servers report): an uplink without
it is refused as ``no_dev_eui`` naming ``end_device_ids.dev_eui`` — counted and logged once
per reason by the bus, not dropped without a word. Unknown fields are ignored.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from kernel.errors import PayloadError
from protocols.lorawan.uplink import DEV_EUI, Uplink, b64decode_field
from protocols.mqtt.inbound import MessageRefused


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TtsApplicationIds(_Model):
    application_id: str = Field(min_length=1)


class TtsDeviceIds(_Model):
    device_id: str = Field(min_length=1)
    dev_eui: str | None = Field(default=None, pattern=DEV_EUI.pattern)
    application_ids: TtsApplicationIds


class TtsRxMetadata(_Model):
    rssi: float | None = None
    snr: float | None = None


class TtsUplinkMessage(_Model):
    f_port: int = Field(default=0, ge=0, le=255)
    f_cnt: int = Field(default=0, ge=0, le=0xFFFFFFFF)
    frm_payload: str = ""
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[TtsRxMetadata] = Field(default_factory=list)


class TtsUplink(_Model):
    end_device_ids: TtsDeviceIds
    received_at: AwareDatetime
    uplink_message: TtsUplinkMessage


def tts_filter(application_id: str = "+", tenant_id: str = "ttn") -> str:
    app = "+" if application_id == "+" else f"{application_id}@{tenant_id}"
    return f"v3/{app}/devices/+/up"


def tts_uplink(msg: TtsUplink, source: str = "tts") -> Uplink:
    """The network-neutral uplink; :class:`MessageRefused` (``no_dev_eui``) without a DevEUI."""
    ids = msg.end_device_ids
    if not ids.dev_eui:
        raise MessageRefused(
            source,
            "end_device_ids.dev_eui",
            "no_dev_eui",
            f"device {ids.device_id!r} has no DevEUI; register it with one in The Things Stack",
        )
    up = msg.uplink_message
    rssis = [rx.rssi for rx in up.rx_metadata if rx.rssi is not None]
    snrs = [rx.snr for rx in up.rx_metadata if rx.snr is not None]
    return Uplink(
        network="tts",
        dev_eui=ids.dev_eui.lower(),
        device_name=ids.device_id,
        application_id=ids.application_ids.application_id,
        f_port=up.f_port,
        f_cnt=up.f_cnt,
        payload=b64decode_field(up.frm_payload, source, "uplink_message.frm_payload"),
        received_at=msg.received_at.astimezone(UTC),
        decoded=up.decoded_payload,
        rssi_dbm=max(rssis) if rssis else None,
        snr_db=max(snrs) if snrs else None,
    )


def parse_tts(raw: bytes | str, source: str = "tts") -> Uplink:
    try:
        msg = TtsUplink.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or "$"
        raise PayloadError(source, loc, err["msg"]) from exc
    return tts_uplink(msg, source)
