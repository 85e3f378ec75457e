"""Topic filters, the telemetry scheme and the streetlight payloads, without a broker."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kernel.errors import ConfigError, PayloadError
from kernel.readings import Quality, Reading, unit_for
from protocols.mqtt.telemetry import (
    MAX_ABS_VALUE,
    TelemetryPayload,
    device_id_from_topic,
    encode_telemetry,
    telemetry_readings,
)
from protocols.mqtt.topics import filter_matches, validate_filter
from protocols.streetlight import LightCommand, LightSchedule, LightState, LightTopics, dump

T0 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/+/c", "a/x/c", True),
        ("a/+/c", "a/x/y/c", False),
        ("a/#", "a", True),  # '#' also matches the parent level
        ("a/#", "a/b/c/d", True),
        ("+/+", "a/b", True),
        ("+/+", "a/b/c", False),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("$share/ingest/w/+/telemetry", "w/m1/telemetry", True),
    ],
)
def test_filter_matching(topic_filter: str, topic: str, matches: bool) -> None:
    assert filter_matches(validate_filter(topic_filter), topic) is matches


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "$share/g", "$share//a"])
def test_bad_filters_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        validate_filter(bad)


levels = st.text(alphabet="abc", min_size=1, max_size=2)


@given(st.lists(levels, min_size=1, max_size=5))
def test_a_topic_matches_itself_and_the_catch_all(parts: list[str]) -> None:
    topic = "/".join(parts)
    assert filter_matches(validate_filter(topic), topic)
    assert filter_matches(validate_filter("#"), topic)
    plus = "/".join("+" for _ in parts)
    assert filter_matches(validate_filter(plus), topic)
    assert not filter_matches(validate_filter(plus + "/+"), topic)


def test_telemetry_readings_are_in_utc_with_units_and_quality() -> None:
    local = datetime(2026, 11, 25, 18, 0, tzinfo=timezone(timedelta(hours=1)))
    payload = TelemetryPayload.model_validate_json(
        encode_telemetry(local, {"power_w": -50.0, "soc_pct": None}, Quality.SUBSTITUTE)
    )
    readings = telemetry_readings("bat-1", payload)
    assert [(r.channel, r.value, r.unit, r.ts, r.quality) for r in readings] == [
        ("power_w", -50.0, "W", T0, Quality.SUBSTITUTE),
        ("soc_pct", None, "%", T0, Quality.UNAVAILABLE),
    ]


values = st.dictionaries(
    st.sampled_from(["power_w", "import_energy_wh", "soc_pct", "x_var", "vehicle_count", "zz"]),
    st.none()
    | st.integers(-(10**12), 10**12)
    | st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, allow_nan=False),
    max_size=6,
)


@given(
    values,
    st.integers(-14 * 60, 14 * 60),
    st.sampled_from(["Z", None]),
    st.sampled_from([None, "good", "substitute"]),
)
def test_telemetry_readings_equal_readings_built_with_every_check(
    vals: dict[str, float | None], offset_min: int, zulu: str | None, quality: str | None
) -> None:
    """The hot path builds readings without re-checking (Reading.prechecked); they must be the
    very readings the checking constructor builds, frozen, with ts in UTC."""
    tz = UTC if zulu else timezone(timedelta(minutes=offset_min))
    local = T0.astimezone(tz)
    body: dict[str, object] = {"ts": local.isoformat(), "values": vals}
    if quality is not None:
        body["quality"] = quality
    payload = TelemetryPayload.model_validate_json(json.dumps(body))
    readings = telemetry_readings("dev-1", payload)
    q = Quality(quality or "good")
    expected = [
        Reading.unavailable("dev-1", ch, T0)
        if v is None
        else Reading("dev-1", ch, float(v), unit_for(ch), T0, q)
        for ch, v in vals.items()
    ]
    assert readings == expected
    assert [hash(r) for r in readings] == [hash(r) for r in expected]
    for r in readings:
        assert r.ts.tzinfo is UTC
        assert type(r.value) in (float, type(None))
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.value = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("topic", "field"),
    [
        ("waldstadt/devices/m-1/telemetry", None),
        ("x/y/waldstadt/devices/m.1:a/telemetry", None),
        ("waldstadt/devices/m 1/telemetry", "device_id"),
        ("waldstadt/meters/m1/telemetry", "topic"),
        ("waldstadt/devices/m1/state", "topic"),
    ],
)
def test_device_id_from_topic(topic: str, field: str | None) -> None:
    if field is None:
        assert device_id_from_topic(topic) == topic.split("/")[-2]
    else:
        with pytest.raises(PayloadError) as info:
            device_id_from_topic(topic)
        assert info.value.field == field


def test_encoding_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        encode_telemetry(datetime(2026, 1, 1), {"power_w": 1})


def command(**over: object) -> bytes:
    body: dict[str, object] = {
        "command_id": "c-1",
        "level_pct": 50,
        "ramp_s": 2,
        "expires_at": "2026-11-25T17:05:00Z",
        "firmware_extra": {"x": 1},
    }
    body.update(over)
    return json.dumps(body).encode()


def test_a_command_ignores_unknown_fields() -> None:
    cmd = LightCommand.model_validate_json(command())
    assert (cmd.level_pct, cmd.ramp_s, cmd.expires_at) == (50.0, 2.0, T0 + timedelta(minutes=5))


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"level_pct": 101}, "level_pct"),
        ({"level_pct": -1}, "level_pct"),
        ({"level_pct": "50"}, "level_pct"),  # strict: no strings for numbers
        ({"level_pct": None}, "level_pct"),
        ({"ramp_s": -1}, "ramp_s"),
        ({"command_id": ""}, "command_id"),
        ({"command_id": 7}, "command_id"),
        ({"expires_at": "2026-11-25T17:05:00"}, "expires_at"),  # naive
    ],
)
def test_a_bad_command_is_refused_naming_the_field(over: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        LightCommand.model_validate_json(command(**over))
    assert info.value.errors()[0]["loc"] == (field,)


def test_state_from_a_node_is_validated_strictly() -> None:
    ok = {"ts": "2026-11-25T17:00:00Z", "level_pct": 40, "power_w": 18.5, "energy_wh": 10,
          "status": "fault", "failures": ["lamp_failure"], "temperature_c": 41}  # fmt: skip
    state = LightState.model_validate_json(json.dumps(ok))
    assert state.failures == ["lamp_failure"]
    for over in ({"power_w": -1}, {"status": "broken"}, {"failures": ["gremlins"]}):
        with pytest.raises(ValidationError):
            LightState.model_validate_json(json.dumps({**ok, **over}))


def test_schedule_round_trips_and_knows_its_step() -> None:
    sched = LightSchedule.model_validate(
        {
            "issued_at": T0,
            "steps": [
                {"at": T0, "level_pct": 100},
                {"at": T0 + timedelta(hours=5), "level_pct": 30},
            ],
            "valid_until": T0 + timedelta(hours=15),
        }
    )
    again = LightSchedule.model_validate_json(dump(sched))
    assert again == sched
    assert again.step_at(T0 - timedelta(seconds=1)) is None
    assert again.step_at(T0 + timedelta(hours=1)).level_pct == 100  # type: ignore[union-attr]
    assert again.step_at(T0 + timedelta(hours=5)).level_pct == 30  # type: ignore[union-attr]
    assert again.step_at(T0 + timedelta(hours=15)) is None


def test_light_topics() -> None:
    t = LightTopics("town/lights/")
    assert t.cmd("p-1") == "town/lights/p-1/cmd"
    assert t.all("state") == "town/lights/+/state"
    assert t.node_of("town/lights/p-1/availability") == "p-1"
    for bad in ("town/lights/p-1", "other/p-1/cmd", "town/lights/p-1/cmd/x"):
        with pytest.raises(PayloadError):
            t.node_of(bad)
