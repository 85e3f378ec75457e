"""The site file's trust keys: meter exchanges, grid connections, the plausibility bounds, and
what the plausibility checks derive from them (channels, ratings, register sizes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kernel.errors import ConfigError
from scheduler.site import load_site_text
from scheduler.site.ratings import HOUSE_CONNECTION_W, device_facts, register_wrap_wh
from tests.scheduler.test_site import SITE, line_of
from vpp.metering.registers import MeterExchange

EXCHANGE = """\
  - name: a-meter
    driver: eastron_sdm630
    host: 127.0.0.1
    unit_id: 1
    exchanges:
      - at: "2026-07-01T10:07:00+02:00"
        old_final_wh: {import_energy_wh: 1234567, export_energy_wh: 3456}
        new_initial_wh: {import_energy_wh: 0, export_energy_wh: 0}
"""
A_METER = "  - {name: a-meter, driver: eastron_sdm630, host: 127.0.0.1, unit_id: 1}\n"


def test_ratings_channels_and_register_sizes_come_from_the_site() -> None:
    text = SITE.replace(A_METER, EXCHANGE).replace(
        "annual_kwh: 3000", "annual_kwh: 3000\n    grid_connection_w: 24150"
    )
    site = load_site_text(text)
    facts = device_facts(site)
    # a's meter: PV 8 kW + battery 5 kW behind it, less than a house connection
    assert facts["a-meter"].rating_w == HOUSE_CONNECTION_W == 43_470
    assert facts["b-meter"].rating_w == 24_150  # given
    assert facts["a-pv"].rating_w == 8_000
    assert facts["a-bat"].rating_w == 5_000
    assert "import_energy_wh" in facts["a-meter"].channels
    assert "soc_pct" in facts["a-bat"].channels
    assert "import_energy_wh" in facts["c-meter"].channels  # sunspec: every mapped channel
    rules = facts["a-meter"].counters["import_energy_wh"]
    assert rules.max_power_w == 43_470
    assert rules.rollover_wh is None  # float32 kWh: no wrap
    assert rules.exchanges == (MeterExchange(datetime(2026, 7, 1, 8, 7, tzinfo=UTC), 1_234_567, 0),)
    assert facts["b-meter"].counters["export_energy_wh"].rollover_wh == 2**32  # acc32
    assert facts["a-pv"].counters["pv_energy_wh"].rollover_wh == 2**32
    assert "soc_pct" not in facts["a-bat"].counters  # not a counter


def test_the_grid_connection_covers_what_is_behind_it() -> None:
    text = SITE.replace("rated_power_w: 8000", "rated_power_w: 99000")
    facts = device_facts(load_site_text(text))
    assert facts["a-meter"].rating_w == 99_000 + 5_000


@pytest.mark.parametrize(
    ("driver", "channel", "size_wh"),
    [
        ("ev_charger", "load_energy_wh", 2**32),  # uint32, Wh
        ("eastron_sdm630", "import_energy_wh", None),  # float32
        ("battery_inverter", "nope_wh", None),
        ("sunspec", "power_w", None),
    ],
)
def test_register_sizes(driver: str, channel: str, size_wh: float | None) -> None:
    assert register_wrap_wh(driver, channel) == size_wh


def test_the_plausibility_section_has_defaults_and_takes_values() -> None:
    site = load_site_text(SITE)
    assert site.plausibility.max_age_s == 7 * 86_400
    assert site.plausibility.max_readings_per_message == 256
    text = SITE + "plausibility: {max_age_s: 3600, max_ahead_s: 60, max_message_bytes: 4096}\n"
    p = load_site_text(text).plausibility
    assert (p.max_age_s, p.max_ahead_s, p.max_message_bytes) == (3600, 60, 4096)


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment", "reason"),
    [
        (
            "export_energy_wh: 3456}",
            "power_w: 3456}",
            "devices.0.exchanges.0",
            "- at:",
            "give both values of every counter exchanged",
        ),
        (
            "{import_energy_wh: 1234567, export_energy_wh: 3456}",
            "{voltage_l1_v: 1}",
            "devices.0.exchanges.0",
            "- at:",
            "give both values",
        ),
        (
            'at: "2026-07-01T10:07:00+02:00"',
            'at: "2026-07-01T10:07:00"',
            "devices.0.exchanges.0.at",
            "at:",
            "timezone",
        ),
        (
            "new_initial_wh: {import_energy_wh: 0,",
            "new_initial_wh: {import_energy_wh: -1,",
            "devices.0.exchanges.0.new_initial_wh.import_energy_wh",
            "new_initial_wh",
            "greater than or equal to 0",
        ),
    ],
)
def test_exchange_errors_name_key_and_line(
    old: str, new: str, field: str, fragment: str, reason: str
) -> None:
    text = SITE.replace(A_METER, EXCHANGE).replace(old, new, 1)
    with pytest.raises(ConfigError) as err:
        load_site_text(text, "site.yaml")
    assert err.value.field == field
    assert err.value.where == f"site.yaml, line {line_of(text, fragment)}"
    assert reason in err.value.reason


def test_an_exchange_must_name_counters_and_follow_the_one_before() -> None:
    text = (
        SITE.replace(A_METER, EXCHANGE)
        .replace(
            "{import_energy_wh: 1234567, export_energy_wh: 3456}",
            "{import_energy_wh: 1234567, voltage_l1_v: 3456}",
        )
        .replace(
            "{import_energy_wh: 0, export_energy_wh: 0}", "{import_energy_wh: 0, voltage_l1_v: 0}"
        )
    )
    with pytest.raises(ConfigError) as err:
        load_site_text(text, "site.yaml")
    assert err.value.field == "devices.0.exchanges.0.old_final_wh.voltage_l1_v"
    assert "no energy counter of driver 'eastron_sdm630'" in err.value.reason
    twice = EXCHANGE + "\n".join(EXCHANGE.splitlines()[5:]).replace("10:07", "09:00") + "\n"
    with pytest.raises(ConfigError) as err:
        load_site_text(SITE.replace(A_METER, twice), "site.yaml")
    assert err.value.field == "devices.0.exchanges.1.at"
    assert "follow each other in time" in err.value.reason
