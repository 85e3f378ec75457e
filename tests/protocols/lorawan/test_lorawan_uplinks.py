"""ChirpStack v4 and The Things Stack v3 uplinks → canonical readings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kernel.errors import PayloadError
from kernel.readings import Quality
from protocols.lorawan import (
    TrafficCount,
    encode_traffic,
    parse_chirpstack,
    parse_tts,
    uplink_readings,
)

FRAME = encode_traffic(TrafficCount(42, 600, 88))
DATA = base64.b64encode(FRAME).decode()


def chirpstack(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-11-25T17:10:00.123+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "Waldstadt",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "deviceName": "traffic-hauptstrasse",
            "devEui": "0101010101010101",
            "tags": {"street": "Hauptstraße"},
        },
        "devAddr": "00189440",
        "fCnt": 10,
        "fPort": 10,
        "data": DATA,
        "rxInfo": [
            {"gatewayId": "0016c001f153a14c", "rssi": -57, "snr": 10},
            {"gatewayId": "0016c001f153a14d", "rssi": -80, "snr": 3.5},
        ],
    }
    event.update(overrides)
    return event


def tts(**overrides: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "end_device_ids": {
            "device_id": "traffic-ring",
            "application_ids": {"application_id": "waldstadt"},
            "dev_eui": "70B3D57ED0000001",
            "dev_addr": "260B1234",
        },
        "correlation_ids": ["as:up:01H"],
        "received_at": "2026-11-25T17:10:01.5Z",
        "uplink_message": {
            "f_port": 10,
            "f_cnt": 7,
            "frm_payload": DATA,
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw"}, "rssi": -101, "snr": 6.2}],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000}}},
        },
    }
    msg.update(overrides)
    return msg


def test_chirpstack_uplink_becomes_traffic_readings() -> None:
    uplink = parse_chirpstack(json.dumps(chirpstack()))
    assert uplink.dev_eui == "0101010101010101"
    assert uplink.f_cnt == 10
    assert uplink.rssi_dbm == -57
    assert uplink.received_at == datetime(2026, 11, 25, 17, 10, 0, 123000, tzinfo=UTC)
    readings = {r.channel: r for r in uplink_readings(uplink)}
    assert readings["vehicle_count"].value == 42
    assert readings["vehicle_count"].device_id == "0101010101010101"
    assert readings["vehicle_flow_per_h"].value == 252.0
    assert readings["battery_pct"].value == 88
    assert all(r.quality is Quality.GOOD for r in readings.values())


def test_tts_uplink_becomes_the_same_readings() -> None:
    uplink = parse_tts(json.dumps(tts()))
    assert uplink.network == "tts"
    assert uplink.dev_eui == "70b3d57ed0000001"
    assert uplink.application_id == "waldstadt"
    readings = {r.channel: r.value for r in uplink_readings(uplink)}
    assert readings["vehicle_count"] == 42
    assert readings["traffic_window_s"] == 600


def test_unknown_fields_are_ignored() -> None:
    event = chirpstack(somethingNew={"x": 1}, confirmed=True)
    event["deviceInfo"]["deviceClassEnabled"] = "CLASS_A"
    assert uplink_readings(parse_chirpstack(json.dumps(event)))
    msg = tts(simulated=True)
    msg["uplink_message"]["consumed_airtime"] = "0.06s"
    assert uplink_readings(parse_tts(json.dumps(msg)))


def test_proto3_defaults_may_be_omitted() -> None:
    event = chirpstack()
    del event["fCnt"]  # fCnt 0 is omitted in proto3 JSON
    assert parse_chirpstack(json.dumps(event)).f_cnt == 0
    mac_only = chirpstack()
    del mac_only["fPort"], mac_only["data"]
    uplink = parse_chirpstack(json.dumps(mac_only))
    assert uplink.f_port == 0
    assert uplink_readings(uplink) == []
    msg = tts()
    del msg["uplink_message"]["f_cnt"]
    assert parse_tts(json.dumps(msg)).f_cnt == 0


def test_chirpstack_time_falls_back_to_the_network_server_time() -> None:
    event = chirpstack()
    del event["time"]
    event["rxInfo"][0]["nsTime"] = "2026-11-25T17:09:59Z"
    assert parse_chirpstack(json.dumps(event)).received_at.minute == 9
    del event["rxInfo"][0]["nsTime"]
    with pytest.raises(PayloadError) as info:
        parse_chirpstack(json.dumps(event))
    assert info.value.field == "time"


def _without(d: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    del node[leaf]
    return d


@pytest.mark.parametrize(
    "path",
    ["deduplicationId", "deviceInfo", "deviceInfo.devEui"],
)
def test_chirpstack_missing_required_field_is_named(path: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_chirpstack(json.dumps(_without(chirpstack(), path)), source="app/dev/up")
    assert info.value.field == path
    assert "required" in info.value.reason.lower()


@pytest.mark.parametrize(
    "path",
    [
        "end_device_ids",
        "end_device_ids.device_id",
        "end_device_ids.application_ids",
        "received_at",
        "uplink_message",
    ],
)
def test_tts_missing_required_field_is_named(path: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_tts(json.dumps(_without(tts(), path)))
    assert info.value.field == path


@pytest.mark.parametrize("bad", ["not base64!", "AQID=A", "AQ"])
def test_bad_base64_is_refused(bad: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_chirpstack(json.dumps(chirpstack(data=bad)))
    assert info.value.field == "data"
    assert "base64" in info.value.reason
    msg = tts()
    msg["uplink_message"]["frm_payload"] = bad
    with pytest.raises(PayloadError) as info:
        parse_tts(json.dumps(msg))
    assert info.value.field == "uplink_message.frm_payload"


def test_wrong_codec_length_is_refused() -> None:
    short = base64.b64encode(FRAME[:4]).decode()
    uplink = parse_chirpstack(json.dumps(chirpstack(data=short)))
    with pytest.raises(PayloadError) as info:
        uplink_readings(uplink)
    assert info.value.field == "data"
    assert "got 4" in info.value.reason


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"fPort": 256}, "fPort"),
        ({"fCnt": -1}, "fCnt"),
        ({"time": "2026-11-25T17:10:00"}, "time"),
    ],
)
def test_out_of_range_or_naive_values_are_refused(override: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_chirpstack(json.dumps(chirpstack(**override)))
    assert info.value.field == field


def test_bad_dev_eui_is_refused() -> None:
    event = chirpstack()
    event["deviceInfo"]["devEui"] = "xyz"
    with pytest.raises(PayloadError) as info:
        parse_chirpstack(json.dumps(event))
    assert info.value.field == "deviceInfo.devEui"


def test_network_decoded_object_is_used_when_no_codec_is_registered() -> None:
    event = chirpstack(
        fPort=2,
        object={"temperature_c": 21.5, "battery_pct": 90, "label": "x", "ok": True, "raw": 3},
    )
    readings = {r.channel: r for r in uplink_readings(parse_chirpstack(json.dumps(event)))}
    assert set(readings) == {"temperature_c", "battery_pct"}
    assert readings["temperature_c"].unit == "°C"
    msg = tts()
    msg["uplink_message"]["f_port"] = 3
    msg["uplink_message"]["decoded_payload"] = {"power_w": 12.5}
    assert [r.value for r in uplink_readings(parse_tts(json.dumps(msg)))] == [12.5]


def test_not_json_is_refused() -> None:
    with pytest.raises(PayloadError):
        parse_chirpstack(b"\xff{")
