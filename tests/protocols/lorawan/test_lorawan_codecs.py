"""The traffic and presence byte codecs: round trips, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.errors import PayloadError
from protocols.lorawan.codecs import (
    PresenceEvent,
    TrafficCount,
    decode_presence,
    decode_traffic,
    encode_presence,
    encode_traffic,
    traffic_readings,
)

TS = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)

counts = st.builds(
    TrafficCount,
    vehicle_count=st.integers(0, 0xFFFF),
    window_s=st.integers(1, 3600),
    battery_pct=st.none() | st.integers(0, 100),
    sensor_fault=st.none() | st.booleans(),
    tamper=st.booleans(),
)


@given(counts)
def test_traffic_round_trip(count: TrafficCount) -> None:
    decoded = decode_traffic(encode_traffic(count))
    if count.sensor_fault is None and count.tamper:
        # a tamper flag forces the flags byte, which then also states "no fault"
        assert decoded == TrafficCount(
            count.vehicle_count, count.window_s, count.battery_pct, False, True
        )
    else:
        assert decoded == count


@given(st.integers(1, 255), st.none() | st.integers(0, 254))
def test_presence_round_trip(objects: int, speed: int | None) -> None:
    event = PresenceEvent(objects, speed)
    assert decode_presence(encode_presence(event)) == event


def test_known_frame_decodes_to_hand_checked_values() -> None:
    # version 1, 84 vehicles (0x0054), 600 s (0x0258), battery 97 %, flags 0
    frame = bytes.fromhex("01005402586100")
    assert decode_traffic(frame) == TrafficCount(84, 600, 97, False, False)
    by_channel = {r.channel: r for r in traffic_readings("sensor-1", TS, frame)}
    assert by_channel["vehicle_count"].value == 84
    assert by_channel["vehicle_flow_per_h"].value == 504.0  # 84 × 6
    assert by_channel["battery_pct"].unit == "%"
    assert by_channel["sensor_fault"].value == 0.0


def test_sensor_fault_makes_counts_unavailable_not_zero() -> None:
    frame = encode_traffic(TrafficCount(0, 600, 50, sensor_fault=True))
    by_channel = {r.channel: r for r in traffic_readings("sensor-1", TS, frame)}
    assert by_channel["vehicle_count"].value is None
    assert not by_channel["vehicle_count"].available
    assert by_channel["vehicle_flow_per_h"].value is None
    assert by_channel["sensor_fault"].value == 1.0


@pytest.mark.parametrize(
    ("frame_hex", "field", "words"),
    [
        ("0100540258", "data", "6 or 7 bytes, got 5"),
        ("0100540258610000", "data", "got 8"),
        ("", "data", "got 0"),
        ("02005402586100", "data.version", "version 2"),
        ("01005400006100", "data.window_s", "window 0 s"),
        ("01005402586500", "data.battery_pct", "101"),
        ("01005402586104", "data.flags", "0x04"),
    ],
)
def test_bad_traffic_frames_are_refused_naming_the_field(
    frame_hex: str, field: str, words: str
) -> None:
    with pytest.raises(PayloadError) as info:
        decode_traffic(bytes.fromhex(frame_hex), source="dev-7")
    assert info.value.field == field
    assert words in info.value.reason
    assert "dev-7" in str(info.value)


@pytest.mark.parametrize(
    ("frame_hex", "field"),
    [
        ("0101", "data"),
        ("010101ff", "data"),
        ("0200ff", "data.version"),
        ("0100ff", "data.objects"),
    ],
)
def test_bad_presence_frames_are_refused(frame_hex: str, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_presence(bytes.fromhex(frame_hex))
    assert info.value.field == field


def test_codec_refuses_to_encode_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="vehicle_count"):
        TrafficCount(70_000)
    with pytest.raises(ValueError, match="battery_pct"):
        TrafficCount(1, 600, 101)
