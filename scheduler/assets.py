"""Every device of a site as an operator sees it now: whose it is, what it is for, whether it
answers (and why not), what it measured in the newest cycle and which setpoints are in force.

Built from values the running service holds (the site, the newest snapshot, the devices away
since start, the command writer's setpoints in force), so the operator API and page show the
same thing. A device that did not answer has no readings here, never zeros or last cycle's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from kernel.commands import Command
from kernel.readings import Reading
from scheduler.site import Site
from scheduler.snapshot import Snapshot

#: What a device is used for, in the order a page shows them.
ROLES = ("meter", "pv", "battery", "ev", "storage_heater")

#: The channels that say most about a device of each role (a page's short column).
KEY_CHANNELS: Mapping[str, tuple[str, ...]] = {
    "meter": ("power_w",),
    "pv": ("power_w",),
    "battery": ("soc_pct", "battery_power_w"),
    "ev": ("load_power_w",),
    "storage_heater": ("load_power_w",),
}


@dataclass(frozen=True, slots=True)
class AssetState:
    """One device at the newest cycle. ``reason`` says why it is unavailable ('' when it
    answers); ``readings`` are the newest cycle's, by channel name; ``setpoints`` the commands
    in force for it (the plan's or an operator's override), newest expiry last."""

    device: str
    driver: str
    member_id: str | None
    roles: tuple[str, ...]
    available: bool
    reason: str
    read_at: datetime | None
    readings: tuple[Reading, ...]
    setpoints: tuple[Command, ...]

    def key_readings(self) -> tuple[Reading, ...]:
        """The readings that say most about the device for its roles (see KEY_CHANNELS)."""
        by_channel = {r.channel: r for r in self.readings}
        wanted = dict.fromkeys(c for role in self.roles for c in KEY_CHANNELS.get(role, ()))
        return tuple(by_channel[c] for c in wanted if c in by_channel)


def device_roles(site: Site) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """device name → (owning member id, roles) from the members' assets; devices that no
    member names get (None, ())."""
    out: dict[str, tuple[str | None, list[str]]] = {}

    def add(device: str, member_id: str, role: str) -> None:
        roles = out.setdefault(device, (member_id, []))[1]
        if role not in roles:
            roles.append(role)

    for m in site.members:
        add(m.meter, m.id, "meter")
        for pv in m.pv:
            add(pv.device, m.id, "pv")
        if m.battery is not None:
            add(m.battery.device, m.id, "battery")
        if m.ev is not None:
            add(m.ev.device, m.id, "ev")
        if m.storage_heater is not None:
            add(m.storage_heater.device, m.id, "storage_heater")
    return {d: (owner, tuple(sorted(roles, key=ROLES.index))) for d, (owner, roles) in out.items()}


def asset_states(
    site: Site,
    snapshot: Snapshot | None,
    away: Mapping[str, str],
    in_force: Iterable[Command],
) -> list[AssetState]:
    """Every device of ``site`` in the site file's order.

    ``snapshot`` is the newest cycle (None before the first: every device is then unavailable
    with that reason); ``away`` the devices that could not be opened at start, with why;
    ``in_force`` the setpoints the writer keeps in force."""
    owners = device_roles(site)
    setpoints: dict[str, list[Command]] = {}
    for cmd in in_force:
        setpoints.setdefault(cmd.target, []).append(cmd)
    out: list[AssetState] = []
    for d in site.devices:
        member_id, roles = owners.get(d.name, (None, ()))
        readings: tuple[Reading, ...] = ()
        if d.name in away:
            available, reason = False, away[d.name]
        elif snapshot is None:
            available, reason = False, "no cycle has run yet"
        elif snapshot.available(d.name):
            available, reason = True, ""
            readings = tuple(sorted(snapshot.readings[d.name].values(), key=lambda r: r.channel))
        else:
            available = False
            reason = snapshot.errors.get(d.name) or "no answer in the newest cycle"
        out.append(
            AssetState(
                device=d.name,
                driver=d.driver,
                member_id=member_id,
                roles=roles,
                available=available,
                reason=reason,
                read_at=snapshot.at if readings and snapshot is not None else None,
                readings=readings,
                setpoints=tuple(
                    sorted(setpoints.get(d.name, ()), key=lambda c: (c.expires_at, c.kind))
                ),
            )
        )
    return out


__all__ = ["KEY_CHANNELS", "ROLES", "AssetState", "asset_states", "device_roles"]
