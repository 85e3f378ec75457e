"""The lighting section of the site file: YAML → core values, errors with key and line."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import yaml

from kernel.config import load_yaml_text
from kernel.errors import ConfigError
from lighting.config import LightingConfig
from lighting.errors import LightingInputError
from lighting.presence import corridor, detection_from_sensor
from lighting.schedule import resolve_segment_night

SITE = """\
programs:
  - name: Wohnstraße
    steps:
      - {name: "on", anchor: sunset, offset_min: -10, level_pct: 100, ramp_s: 60}
      - {name: evening, anchor: clock, clock: "22:00", level_pct: 70, ramp_s: 300}
      - {name: after midnight, anchor: solar_midnight, level_pct: 30, ramp_s: 300}
      - {name: "off", anchor: sunrise, offset_min: 10, level_pct: 0, ramp_s: 60}
  - name: Volllicht
    steps:
      - {name: "on", anchor: sunset, level_pct: 100}
      - {name: "off", anchor: sunrise, level_pct: 0}
calendars:
  - name: default
    state: NW
    default_program: Wohnstraße
    rules:
      - {kind: event, name: Stadtfest, program: Volllicht, nights: [2026-08-29]}
      - {kind: holiday, name: Feiertag, program: Volllicht}
      - {kind: weekday, name: Wochenende, program: Volllicht, weekdays: [fri, sat]}
      - {kind: nth_weekday, name: Markt, program: Volllicht, weekday: sat, n: 1, month: 12}
      - {kind: date_range, name: Ferien, program: Volllicht, first: 2026-12-20,
         last: 2027-01-06, every_year: true}
segments:
  - id: seg-0
    latitude_deg: 51.51
    longitude_deg: 7.47
    design_class: M4
    lower_classes: [M5, M6]
    class_levels_pct: {M4: 50}
    traffic: {capacity_veh_per_h: 600}
    presence: {boost_pct: 80}
driver_curves:
  linear: [[0, 0], [100, 1]]
luminaires:
  - {id: lum-1, segment: seg-0, street: Hauptstraße, pole: 1, rated_power_w: 40}
  - {id: lum-2, segment: seg-0, street: Hauptstraße, pole: 2, rated_power_w: 40,
     driver_curve: linear}
sensors:
  - {id: radar-1, segment: seg-0, street: Hauptstraße, pole: 2}
"""


def test_site_section_builds_the_core_values() -> None:
    site = LightingConfig.model_validate(yaml.safe_load(SITE)).site
    seg = site.index.segments["seg-0"]
    assert seg.classing.floor_level_pct == pytest.approx(20.0)
    assert seg.traffic is not None
    assert seg.traffic.capacity_veh_per_h == 600
    assert seg.presence is not None
    assert seg.presence.boost_pct == 80
    assert site.index.luminaires["lum-2"].curve.points == ((0.0, 0.0), (100.0, 1.0))
    assert site.index.streets["Hauptstraße"].luminaire_ids == ("lum-1", "lum-2")
    det = detection_from_sensor(site.index, "radar-1", datetime(2026, 1, 14, 22, tzinfo=UTC))
    assert (det.street_id, det.pole_index, det.sensor_id) == ("Hauptstraße", 2, "radar-1")
    assert corridor(site.index, det) == ("lum-1", "lum-2")
    night = resolve_segment_night(seg, site.programs, date(2026, 1, 14))  # a Wednesday
    assert night.program == "Wohnstraße"
    assert [s.step_name for s in night.steps] == ["on", "evening", "after midnight", "off"]
    assert resolve_segment_night(seg, site.programs, date(2026, 12, 5)).rule == "Wochenende"
    assert resolve_segment_night(seg, site.programs, date(2026, 12, 30)).rule == "Ferien"


def test_each_sensor_names_its_network_server() -> None:
    """ChirpStack unless the sensor says ``network: tts``; the service listens to both."""
    text = SITE + "  - {id: radar-2, segment: seg-0, street: Hauptstraße, pole: 1, network: tts}\n"
    site = LightingConfig.model_validate(yaml.safe_load(text)).site
    assert (site.network_of("radar-1"), site.network_of("radar-2")) == ("chirpstack", "tts")
    assert site.networks == {"chirpstack", "tts"}
    only_chirpstack = LightingConfig.model_validate(yaml.safe_load(SITE)).site
    assert only_chirpstack.networks == {"chirpstack"}
    no_sensors = yaml.safe_load(SITE)
    del no_sensors["sensors"]
    assert LightingConfig.model_validate(no_sensors).site.networks == frozenset()


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "reason"),
    [
        ("level_pct: 70,", "level_pct: 170,", "programs.0.steps.1.level_pct", 5, "less than"),
        ('clock: "22:00"', "clock: 22:00", "programs.0.steps.1.clock", 5, "quoted"),
        ("state: NW", "state: XX", "calendars.0", 13, "unknown holiday region DE/XX"),
        ("    latitude_deg: 51.51\n", "", "segments.0", 24, "latitude_deg: missing"),
        ("design_class: M4", "design_klass: M4", "segments.0", 24, "design_klass: unknown key"),
        ("design_class: M4", "design_class: M9", "segments.0", 24, "unknown lighting class"),
        (
            "nights: [2026-08-29]",
            "nights: [2026-08-29], colour: red",
            "calendars.0.rules.0",
            17,
            "unknown key",
        ),
        (
            "program: Volllicht, weekdays",
            "program: Vollicht, weekdays",
            "<root>",
            1,
            "unknown program 'Vollicht'",
        ),
        (
            "segment: seg-0, street: Hauptstraße, pole: 2",
            "segment: seg-9, street: X, pole: 2",
            "<root>",
            1,
            "unknown segment 'seg-9'",
        ),
        (
            "{id: radar-1, segment: seg-0, street: Hauptstraße",
            "{id: radar-1, segment: seg-0, street: Nebenweg",
            "<root>",
            1,
            "sensor 'radar-1'.street_id",
        ),
        (
            "street: Hauptstraße, pole: 2}\n",
            "street: Hauptstraße, pole: 2, network: ttn}\n",
            "sensors.0.network",
            39,
            "'chirpstack' or 'tts'",
        ),
    ],
)
def test_errors_name_key_and_line(old: str, new: str, field: str, line: int, reason: str) -> None:
    text = SITE.replace(old, new, 1)
    assert text != SITE
    with pytest.raises(ConfigError) as err:
        load_yaml_text(LightingConfig, text, "site.yaml")
    assert err.value.field.startswith(field)
    assert err.value.where == f"site.yaml, line {line}"
    assert reason in str(err.value)


def test_steps_out_of_order_are_found_when_a_night_is_resolved() -> None:
    cfg = load_yaml_text(LightingConfig, SITE.replace('clock: "22:00"', 'clock: "13:00"', 1))
    seg = cfg.site.index.segments["seg-0"]
    with pytest.raises(LightingInputError) as err:
        resolve_segment_night(seg, cfg.site.programs, date(2026, 1, 14))
    assert err.value.field == "program 'Wohnstraße'.steps[1] ('evening')"
