"""Assets now: every device of a site with its owner, roles, availability and the reason, the
newest readings (never zeros for a silent device) and the setpoints in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.commands import Command, CommandKind
from kernel.readings import Quality, Reading
from scheduler.assets import asset_states, device_roles
from scheduler.site import load_site_text
from scheduler.snapshot import Snapshot
from tests.scheduler.test_site import SITE

AT = datetime(2026, 6, 22, 10, 0, tzinfo=UTC)


def reading(device: str, channel: str, value: float | None, unit: str) -> Reading:
    quality = Quality.GOOD if value is not None else Quality.UNAVAILABLE
    return Reading(device, channel, value, unit, AT, quality)


def command(target: str, kind: CommandKind, value: float, minutes: int) -> Command:
    return Command(
        command_id=f"{target}-{kind}-{minutes}",
        target=target,
        kind=kind,
        value=value,
        expires_at=AT + timedelta(minutes=minutes),
        source="dispatch",
        revert_s=900,
    )


def test_owners_and_roles_come_from_the_members_assets() -> None:
    site = load_site_text(SITE, "site.yaml")
    roles = device_roles(site)
    assert roles["a-meter"] == ("a", ("meter",))
    assert roles["a-pv"] == ("a", ("pv",))
    assert roles["a-bat"] == ("a", ("battery",))
    assert roles["c-meter"] == ("c", ("meter",))


def test_available_silent_away_and_before_the_first_cycle() -> None:
    site = load_site_text(SITE, "site.yaml")
    snapshot = Snapshot.build(
        AT,
        [
            reading("a-meter", "power_w", 1234.0, "W"),
            reading("a-bat", "soc_pct", 55.5, "%"),
            reading("a-bat", "battery_power_w", -800.0, "W"),
            reading("a-bat", "operating_state", None, ""),  # not implemented: 0xFFFF
            reading("b-meter", "power_w", 300.0, "W"),
        ],
        unavailable={"a-pv"},
        errors={"a-pv": "timeout after 2 s"},
    )
    in_force = [
        command("a-bat", CommandKind.BATTERY_POWER_W, -800.0, 10),
        command("a-pv", CommandKind.POWER_LIMIT_PCT, 60.0, 5),
    ]
    states = {
        a.device: a
        for a in asset_states(site, snapshot, {"c-meter": "no SunS marker at 40000"}, in_force)
    }
    assert list(states) == [d.name for d in site.devices]  # the site file's order

    bat = states["a-bat"]
    assert bat.available
    assert bat.reason == ""
    assert bat.read_at == AT
    assert [r.channel for r in bat.readings] == ["battery_power_w", "operating_state", "soc_pct"]
    assert [r.channel for r in bat.key_readings()] == ["soc_pct", "battery_power_w"]
    assert [c.value for c in bat.setpoints] == [-800.0]

    pv = states["a-pv"]  # silent in this cycle: the reason, no readings (not zeros)
    assert not pv.available
    assert pv.reason == "timeout after 2 s"
    assert pv.readings == ()
    assert pv.read_at is None
    assert [c.kind for c in pv.setpoints] == [CommandKind.POWER_LIMIT_PCT]

    away = states["c-meter"]  # never opened: the discovery's reason wins
    assert not away.available
    assert away.reason == "no SunS marker at 40000"
    assert away.member_id == "c"
    assert away.roles == ("meter",)

    before = {a.device: a for a in asset_states(site, None, {}, [])}
    assert not any(a.available for a in before.values())
    assert {a.reason for a in before.values()} == {"no cycle has run yet"}


def test_a_device_read_without_any_channel_is_unavailable_with_a_reason() -> None:
    site = load_site_text(SITE, "site.yaml")
    snapshot = Snapshot.build(AT, [reading("a-meter", "power_w", 5.0, "W")])
    states = {a.device: a for a in asset_states(site, snapshot, {}, [])}
    assert states["a-meter"].available
    assert not states["b-meter"].available
    assert states["b-meter"].reason == "no answer in the newest cycle"
