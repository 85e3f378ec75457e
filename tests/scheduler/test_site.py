"""The site file: the example loads, every kind of mistake is one error naming key and line."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from kernel.errors import ConfigError
from scheduler.site import (
    SINCE_EVER,
    Site,
    SiteReferenceError,
    load_site,
    load_site_text,
    site_from_data,
)
from vpp.settlement.keys import KeyKind

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"

SITE = """\
site: {name: Teststadt, latitude: 51.37, longitude: 7.70}
devices:
  - {name: a-meter, driver: eastron_sdm630, host: 127.0.0.1, unit_id: 1}
  - {name: a-pv, driver: sunspec, host: 127.0.0.1, unit_id: 2}
  - {name: a-bat, driver: battery_inverter, host: 127.0.0.1, unit_id: 3}
  - {name: b-meter, driver: sunspec_meter_203, host: 127.0.0.2, unit_id: 1}
  - {name: c-meter, driver: sunspec, host: 127.0.0.3, unit_id: 1}
tariffs:
  - {name: t2026, valid_from: "2026-01-01T00:00:00+01:00", supplier_price_eur_per_kwh: "0.32",
     community_price_eur_per_kwh: "0.22", feed_in_price_eur_per_kwh: "0.08"}
  - {name: t2027, valid_from: "2027-01-01T00:00:00+01:00", supplier_price_eur_per_kwh: "0.30",
     community_price_eur_per_kwh: "0.21", feed_in_price_eur_per_kwh: "0.07"}
members:
  - id: a
    name: Haus A
    meter: a-meter
    pv: [{device: a-pv, rated_power_w: 8000}]
    battery: {device: a-bat, capacity_wh: 10000, max_charge_w: 5000, max_discharge_w: 5000}
  - id: b
    name: Haus B
    meter: b-meter
    annual_kwh: 3000
  - {id: c, name: Schule, meter: c-meter, load_profile: G25}
communities:
  - id: q
    name: Quartier
    members:
      - {member: a}
      - {member: b, joined: "2026-03-01T00:00:00+01:00", participation_pct: 50}
      - {member: c}
    keys:
      - {kind: dynamic}
      - {kind: static, shares: {a: "0.5", b: "0.25"}, valid_from: "2026-07-01T00:00:00+02:00"}
    tariffs: [t2027, t2026]
"""


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line containing ``fragment``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in text")


def test_the_example_site_loads() -> None:
    site = load_site(EXAMPLE)
    assert site.site.name == "Waldstadt Iserlohn"
    assert [m.id for m in site.members] == ["hh01", "hh02", "hh03", "school", "stadtwerk-pv"]
    assert site.member("school").load_profile == "G25"
    community = site.settlement_community("quartier")
    assert community.member_ids == ("hh01", "hh02", "hh03", "school", "stadtwerk-pv")
    assert community.keys[0].key.kind is KeyKind.AT_DYNAMIC
    assert site.lighting is not None
    assert len(site.lighting.site.index.luminaires) == 6
    assert site.settlement.final_at == time(1, 0)
    ev = site.member("hh02").ev
    assert ev is not None
    assert (ev.arrival, ev.departure, ev.smart_charging) == (time(18, 30), time(7, 0), True)
    heater = site.member("hh03").storage_heater
    assert heater is not None
    assert (heater.window_start, heater.window_end) == (time(22, 0), time(6, 0))
    assert site.device(heater.device).driver == "storage_heater"


def test_a_small_site_builds_what_settlement_needs() -> None:
    site = load_site_text(SITE)
    assert site.device("a-pv").port == 502  # default
    assert site.device("a-pv").timeout_s == 1.0
    assert site.member("b").annual_kwh == 3000
    assert site.member("c").pv == []
    assert [m.id for m in site.members_of("q")] == ["a", "b", "c"]
    assert site.dispatch.revert_s == 900
    assert site.site.timezone == "Europe/Berlin"

    community = site.settlement_community("q")
    b = community.membership("b")
    assert b.joined == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert b.joined.tzinfo is UTC
    assert b.left is None
    assert b.participation_pct == 50
    first, second = community.keys
    assert first.valid_from == SINCE_EVER
    assert first.key.kind is KeyKind.AT_DYNAMIC
    assert second.valid_from == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    assert second.key.kind is KeyKind.AT_STATIC
    assert second.key.share_of("a") == Fraction(1, 2)
    assert second.key.share_of("c") == 0
    # listed 2027 first, settlement gets them in time order, exact decimals
    assert [t.valid_from.year for t in community.tariffs] == [2025, 2026]
    assert community.tariffs[0].supplier_price_eur_per_kwh == Decimal("0.32")
    assert community.tariffs[0].network_fee_shared_eur_per_kwh == Decimal(0)
    assert community.emission_factor_g_per_kwh == Decimal(380)


@pytest.mark.parametrize(
    ("kind", "shares", "expected"),
    [
        ("constant", '{a: "0.2", b: "0.3", c: "0.5"}', KeyKind.DE_CONSTANT),
        ("proportional", None, KeyKind.DE_PROPORTIONAL),
        ("contract", '{a: "0.6", c: "0.4"}', KeyKind.DE_CONTRACT),
    ],
)
def test_each_key_kind_becomes_its_settlement_key(
    kind: str, shares: str | None, expected: KeyKind
) -> None:
    entry = f"{{kind: {kind}" + (f", shares: {shares}" if shares else "") + "}"
    text = SITE.replace("- {kind: dynamic}", f"- {entry}")
    key = load_site_text(text).settlement_community("q").keys[0].key
    assert key.kind is expected
    if shares:
        assert sum(s for _, s in key.shares) == 1


def test_contract_key_keeps_reoffer() -> None:
    text = SITE.replace(
        "- {kind: dynamic}", '- {kind: contract, shares: {a: "0.5"}, reoffer: true}'
    )
    assert load_site_text(text).settlement_community("q").keys[0].key.reoffer


def test_lookups_of_unknown_names_raise_key_error() -> None:
    site = load_site_text(SITE)
    for lookup in (site.device, site.member, site.community):
        with pytest.raises(KeyError):
            lookup("nope")


def test_site_from_data_validates_generated_sites() -> None:
    data = {
        "site": {"name": "Demo", "latitude": 51.37, "longitude": 7.7},
        "devices": [{"name": "m", "driver": "eastron_sdm630", "host": "127.0.0.1"}],
        "members": [{"id": "x", "name": "X", "meter": "m"}],
    }
    site = site_from_data(data, "demo")
    assert site.member("x").meter == "m"
    data["members"] = [{"id": "x", "name": "X", "meter": "gone"}]
    with pytest.raises(ConfigError) as err:
        site_from_data(data, "demo")
    assert err.value.field == "members.0.meter"
    assert err.value.where == "demo"


# (replace this, with this, expected key path, line fragment of the new text, reason)
ERRORS = [
    (
        "annual_kwh: 3000",
        "anual_kwh: 3000",
        "members.1.anual_kwh",
        "anual_kwh",
        "unknown key",
    ),
    (
        "  - {id: c, name: Schule",
        "  - {id: c, nmae: Schule",
        "members.2.name",
        "nmae",
        "required key is missing — also: members.2.nmae: unknown key",
    ),
    (
        "rated_power_w: 8000",
        "rated_power_w: -8000",
        "members.0.pv.0.rated_power_w",
        "rated_power_w",
        "greater than 0",
    ),
    (
        "host: 127.0.0.2, unit_id: 1}",
        "host: 127.0.0.2, unit_id: 300}",
        "devices.3.unit_id",
        "unit_id: 300",
        "less than or equal to 247",
    ),
    (
        "driver: battery_inverter",
        "driver: batery_inverter",
        "devices.2.driver",
        "batery_inverter",
        "unknown driver 'batery_inverter'",
    ),
    (
        "load_profile: G25",
        "load_profile: X99",
        "members.2.load_profile",
        "X99",
        "'H25', 'G25', 'P25' or 'S25'",
    ),
    (
        'feed_in_price_eur_per_kwh: "0.08"',
        'feed_in_price_eur_per_kwh: "-0.08"',
        "tariffs.0.feed_in_price_eur_per_kwh",
        "-0.08",
        "greater than or equal to 0",
    ),
    (
        "pv: [{device: a-pv,",
        "pv: [{device: a-pvv,",
        "members.0.pv.0.device",
        "a-pvv",
        "unknown device 'a-pvv'",
    ),
    (
        "battery: {device: a-bat,",
        "battery: {device: a-pv,",
        "members.0.battery.device",
        "battery: {device: a-pv",
        "device 'a-pv' is already used as members.0.pv.0.device",
    ),
    (
        "{name: b-meter, driver: sunspec_meter_203",
        "{name: b-meter, driver: battery_inverter",
        "members.1.meter",
        "meter: b-meter",
        "does not read import and export energy",
    ),
    (
        "      - {member: c}",
        "      - {member: d}",
        "communities.0.members.2.member",
        "{member: d}",
        "unknown member 'd'",
    ),
    (
        '{a: "0.5", b: "0.25"}',
        '{a: "0.5", d: "0.25"}',
        "communities.0.keys.1.shares.d",
        'd: "0.25"',
        "'d' is not a member of community 'q'",
    ),
    (
        '{a: "0.5", b: "0.25"}',
        '{a: "0.75", b: "0.5"}',
        "communities.0.keys.1.shares",
        'b: "0.5"',
        "shares sum to 125 %",
    ),
    (
        "- {kind: dynamic}",
        "- {kind: static}",
        "communities.0.keys.0",
        "kind: static}",
        "a static key needs shares",
    ),
    (
        "tariffs: [t2027, t2026]",
        "tariffs: [t2027, t2028]",
        "communities.0.tariffs.1",
        "t2028",
        "unknown tariff 't2028'",
    ),
    (
        "  - {name: b-meter,",
        "  - {name: a-pv,",
        "devices.3.name",
        "{name: a-pv, driver: sunspec_meter",
        "'a-pv' is defined twice (also devices.1)",
    ),
    (
        "  - {id: c, name",
        "  - {id: a, name",
        "members.2.id",
        "{id: a, name",
        "'a' is defined twice (also members.0)",
    ),
    (
        "  - {name: t2027,",
        "  - {name: t2026,",
        "tariffs.1.name",
        '{name: t2026, valid_from: "2027',
        "'t2026' is defined twice",
    ),
    (
        "host: 127.0.0.3, unit_id: 1}",
        "host: 127.0.0.1, unit_id: 1}",
        "devices.4.unit_id",
        "c-meter",
        "127.0.0.1:502 unit 1 is also devices.0",
    ),
    (
        '"2026-03-01T00:00:00+01:00"',
        '"2026-03-01T00:07:00+01:00"',
        "communities.0.members.1.joined",
        "00:07:00",
        "not on a quarter-hour boundary",
    ),
    (
        "      - {member: c}",
        "      - {member: a, participation_pct: 1}",
        "communities.0.members.2.member",
        "participation_pct: 1}",
        "member 'a' is listed twice",
    ),
    (
        "site: {name: Teststadt, latitude: 51.37, longitude: 7.70}",
        "site: {name: Teststadt, latitude: 51.37, longitude: 7.70, state: XX}",
        "site.state",
        "state: XX",
        "unknown German state 'XX'",
    ),
    (
        '- {kind: static, shares: {a: "0.5", b: "0.25"}, valid_from: "2026-07-01T00:00:00+02:00"}',
        '- {kind: static, shares: {a: "0.5", b: "0.25"}}',
        "communities.0.keys",
        "keys:",
        "key 1 has no valid_from",
    ),
]


@pytest.mark.parametrize(("old", "new", "field", "fragment", "reason"), ERRORS)
def test_errors_name_key_and_line(
    old: str, new: str, field: str, fragment: str, reason: str
) -> None:
    text = SITE.replace(old, new, 1)
    assert text != SITE, old
    with pytest.raises(ConfigError) as err:
        load_site_text(text, "site.yaml")
    assert err.value.field == field
    assert err.value.where == f"site.yaml, line {line_of(text, fragment)}"
    assert reason in err.value.reason


def test_clock_times_must_be_quoted() -> None:
    text = SITE.replace(
        "    annual_kwh: 3000\n",
        "    annual_kwh: 3000\n"
        "    ev: {device: c-meter, max_power_w: 11000, energy_needed_wh: 20000, arrival: 18:00}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_site_text(text)
    assert err.value.field == "members.1.ev.arrival"
    assert 'quoted text "HH:MM", got 1080' in err.value.reason


def test_a_member_in_six_communities_is_refused() -> None:
    communities = "".join(
        f"  - {{id: q{i}, name: Q{i}, members: [{{member: b, participation_pct: 10}}],"
        " keys: [{kind: dynamic}], tariffs: [t2026]}\n"
        for i in range(1, 6)
    )
    text = SITE.replace("participation_pct: 50", "participation_pct: 10") + communities
    with pytest.raises(ConfigError) as err:
        load_site_text(text, "site.yaml")
    assert err.value.field == "communities.5.members.0.member"
    assert "would be in 6 communities (at most 5)" in err.value.reason
    assert err.value.where == f"site.yaml, line {line_of(text, 'id: q5')}"
    # five are allowed
    five = text[: text.index("  - {id: q5")]
    assert len(load_site_text(five).communities) == 5


def test_participation_above_100_pct_in_total_is_refused() -> None:
    text = SITE + (
        "  - {id: r, name: R, members: [{member: b, participation_pct: 60}],"
        " keys: [{kind: dynamic}], tariffs: [t2026]}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_site_text(text)
    assert err.value.field == "communities.1.members.0.participation_pct"
    assert "110 % in total" in err.value.reason


LIGHTING = """\
lighting:
  programs:
    - name: Wohnstraße
      steps:
        - {name: dusk, anchor: sunset, level_pct: 80, ramp_s: 60}
        - {name: dawn, anchor: sunrise, level_pct: 0, ramp_s: 60}
  calendars:
    - {name: default, default_program: Wohnstraße}
  segments:
    - {id: seg-0, latitude_deg: 51.37, longitude_deg: 7.70, design_class: P3}
  luminaires:
    - {id: lum-1, segment: seg-0, street: Waldweg, pole: 1, rated_power_w: 28}
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment", "reason"),
    [
        (
            "level_pct: 80",
            "level_pct: 180",
            "lighting.programs.0.steps.0.level_pct",
            "level_pct: 180",
            "less than or equal to 100",
        ),
        (
            "rated_power_w: 28}",
            "rated_power_w: 28, colour: warm}",
            "lighting.luminaires.0.colour",
            "colour",
            "unknown key",
        ),
        (
            "design_class: P3}",
            "design_class: P3, calendar: nachts}",
            "lighting",
            "lighting:",
            "unknown calendar 'nachts'",
        ),
    ],
)
def test_lighting_errors_keep_their_key_and_line(
    old: str, new: str, field: str, fragment: str, reason: str
) -> None:
    good = SITE + LIGHTING
    assert load_site_text(good).lighting is not None
    text = good.replace(old, new, 1)
    assert text != good
    with pytest.raises(ConfigError) as err:
        load_site_text(text, "site.yaml")
    assert err.value.field == field
    assert err.value.where == f"site.yaml, line {line_of(text, fragment)}"
    assert reason in err.value.reason


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_site(tmp_path / "missing.yaml")
    assert err.value.field == "<file>"
    assert "cannot read" in err.value.reason


def test_validating_the_model_directly_checks_references_too() -> None:
    data = yaml.safe_load(SITE.replace("meter: b-meter", "meter: z-meter"))
    with pytest.raises(ValidationError) as err:
        Site.model_validate(data)
    cause = err.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, SiteReferenceError)
    assert cause.path == ("members", 1, "meter")
    assert cause.reason == "unknown device 'z-meter'"
