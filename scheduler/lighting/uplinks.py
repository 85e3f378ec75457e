"""Sensor uplinks as the lighting core wants them: traffic samples and presence detections.

A LoRaWAN uplink names its device by DevEUI and by the network server's device name; a
sensor of the lighting site (``lighting.site.Sensor``) may be configured under either, so
both are looked up. Traffic counts (fPort 10) become a :class:`~lighting.traffic.TrafficSample`
of the sensor's segment, rescaled to the segment rule's window when the sensor counts over a
different one; a count flagged as a sensor fault becomes a sample *without* count (the core
then returns the segment to its design class). Presence events (fPort 11) become a
:class:`~lighting.presence.Detection` at the sensor's pole, at the network server's
reception time.
"""

from __future__ import annotations

from dataclasses import dataclass

from lighting.presence import Detection, detection_from_sensor
from lighting.site import LightingIndex, Sensor
from lighting.traffic import TrafficSample
from protocols.lorawan.codecs import (
    PRESENCE_FPORT,
    TRAFFIC_FPORT,
    decode_presence,
    decode_traffic,
)
from protocols.lorawan.uplink import Uplink


@dataclass(frozen=True, slots=True)
class SampleFor:
    """A traffic sample for ``segment_id``."""

    segment_id: str
    sample: TrafficSample


def sensor_of(index: LightingIndex, uplink: Uplink) -> Sensor | None:
    """The site's sensor behind ``uplink`` (by DevEUI, either case, or by device name)."""
    sensors = index.sensors
    return (
        sensors.get(uplink.dev_eui)
        or sensors.get(uplink.dev_eui.upper())
        or sensors.get(uplink.device_name)
    )


def traffic_sample(index: LightingIndex, sensor: Sensor, uplink: Uplink) -> SampleFor | None:
    """The sample of a traffic uplink, or None when the uplink is not a traffic count."""
    if uplink.f_port != TRAFFIC_FPORT:
        return None
    frame = decode_traffic(uplink.payload, source=uplink.device_id)
    segment = index.segments[sensor.segment_id]
    count: int | None = frame.vehicle_count
    if frame.sensor_fault:
        count = None
    elif segment.traffic is not None and frame.window_s != segment.traffic.window_s:
        count = round(frame.vehicle_count * segment.traffic.window_s / frame.window_s)
    return SampleFor(sensor.segment_id, TrafficSample(uplink.received_at, count))


def presence_detection(index: LightingIndex, sensor: Sensor, uplink: Uplink) -> Detection | None:
    """The detection of a presence uplink, or None when the uplink is not a presence event.

    The direction of travel is unknown to these sensors (0: the corridor runs both ways)."""
    if uplink.f_port != PRESENCE_FPORT:
        return None
    decode_presence(uplink.payload, source=uplink.device_id)  # refuse a malformed frame
    return detection_from_sensor(index, sensor.sensor_id, uplink.received_at, 0)
