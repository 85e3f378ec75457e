"""The whole site file and its cross references."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Self

from pydantic import (
    Field,
    model_validator,
)

from kernel.config import Path_
from lighting.config import LightingConfig
from protocols.modbus.factory import SUNSPEC
from protocols.modbus.template import load_template
from protocols.sunspec.mapping import meter_part_of
from scheduler.site.assets import DeviceConfig, MemberConfig, SiteInfo
from scheduler.site.broker import BrokerConfig
from scheduler.site.community import (
    CommunityConfig,
    DispatchConfig,
    SettlementConfig,
    TariffConfig,
)
from scheduler.site.fields import SINCE_EVER, _Model, _utc, value_utc
from scheduler.site.plausibility import COUNTER_CHANNELS, PlausibilityConfig, driver_channels
from vpp.settlement.errors import SettlementInputError
from vpp.settlement.model import (
    MAX_COMMUNITIES_PER_MEMBER,
    Community,
    KeyPeriod,
    Membership,
)
from vpp.settlement.validate import validate_community


class SiteReferenceError(ValueError):
    """A cross reference that does not hold; ``path`` is the key path of the culprit."""

    def __init__(self, path: Path_, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{_dotted(path)}: {reason}")


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def _duplicates(section: str, key: str, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise SiteReferenceError(
                (section, i, key), f"{name!r} is defined twice (also {section}.{seen[name]})"
            )
        seen[name] = i


def _reads_grid_energy(driver: str) -> bool:
    """SunSpec devices are discovered (inverter or meter); a template must have both
    ``import_energy_wh`` and ``export_energy_wh`` channels."""
    if driver == SUNSPEC:
        return True
    channels = load_template(driver).channels
    return "import_energy_wh" in channels and "export_energy_wh" in channels


def _check_exchanges(index: int, device: DeviceConfig) -> None:
    """Exchanges name the device's energy counters and follow each other in time."""
    counters = driver_channels(device.driver) & COUNTER_CHANNELS
    previous = None
    for k, ex in enumerate(device.exchanges):
        path: Path_ = ("devices", index, "exchanges", k)
        for channel in ex.old_final_wh:
            if channel not in counters:
                raise SiteReferenceError(
                    (*path, "old_final_wh", channel),
                    f"{channel!r} is no energy counter of driver {device.driver!r} "
                    f"(counters: {', '.join(sorted(counters)) or 'none'})",
                )
        if previous is not None and ex.at_utc <= previous:
            raise SiteReferenceError((*path, "at"), "exchanges must follow each other in time")
        previous = ex.at_utc


def _meter_part(name: str, devices: dict[str, DeviceConfig]) -> bool:
    """``<device>:meter`` (``:meter2`` …) names the meter on a SunSpec inverter's unit id
    (:func:`protocols.sunspec.mapping.meter_part_id`): a member's grid meter may be one."""
    part = meter_part_of(name)
    return part is not None and part[0] in devices and devices[part[0]].driver == SUNSPEC


class Site(_Model):
    """The whole site file. Validating it also checks every cross reference (a
    :class:`SiteReferenceError` naming the key path); load it with :func:`load_site` so that
    errors carry the file and the line."""

    site: SiteInfo
    devices: list[DeviceConfig] = Field(default_factory=list)
    tariffs: list[TariffConfig] = Field(default_factory=list)
    members: list[MemberConfig] = Field(default_factory=list)
    communities: list[CommunityConfig] = Field(default_factory=list)
    dispatch: DispatchConfig = DispatchConfig()
    settlement: SettlementConfig = SettlementConfig()
    plausibility: PlausibilityConfig = PlausibilityConfig()
    lighting: LightingConfig | None = None
    broker: BrokerConfig = BrokerConfig()

    @model_validator(mode="after")
    def _references_hold(self) -> Self:
        _duplicates("tariffs", "name", [t.name for t in self.tariffs])
        self._check_devices()
        self._check_members()
        self._check_communities()
        return self

    def _check_devices(self) -> None:
        _duplicates("devices", "name", [d.name for d in self.devices])
        at: dict[tuple[str, int, int], int] = {}
        for i, d in enumerate(self.devices):
            addr = (d.host, d.port, d.unit_id)
            if addr in at:
                raise SiteReferenceError(
                    ("devices", i, "unit_id"),
                    f"{d.host}:{d.port} unit {d.unit_id} is also devices.{at[addr]}",
                )
            at[addr] = i
            _check_exchanges(i, d)

    def _check_members(self) -> None:
        _duplicates("members", "id", [m.id for m in self.members])
        devices = {d.name: d for d in self.devices}
        used: dict[str, Path_] = {}
        for i, member in enumerate(self.members):
            for sub, name in member.device_roles():
                path: Path_ = ("members", i, *sub)
                if name not in devices and not (sub == ("meter",) and _meter_part(name, devices)):
                    raise SiteReferenceError(path, f"unknown device {name!r}")
                if name in used:
                    raise SiteReferenceError(
                        path, f"device {name!r} is already used as {_dotted(used[name])}"
                    )
                used[name] = path
            driver = devices[member.meter].driver if member.meter in devices else SUNSPEC
            if not _reads_grid_energy(driver):
                raise SiteReferenceError(
                    ("members", i, "meter"),
                    f"device {member.meter!r} (driver {driver!r}) does not read import and "
                    "export energy; a grid-point meter must",
                )

    def _check_communities(self) -> None:
        _duplicates("communities", "id", [c.id for c in self.communities])
        member_ids = {m.id for m in self.members}
        tariffs = {t.name: t for t in self.tariffs}
        taken: dict[str, list[str]] = defaultdict(list)
        pct: dict[str, int] = defaultdict(int)
        for ci, community in enumerate(self.communities):
            seen: set[str] = set()
            for mi, cm in enumerate(community.members):
                path: Path_ = ("communities", ci, "members", mi, "member")
                if cm.member not in member_ids:
                    raise SiteReferenceError(path, f"unknown member {cm.member!r}")
                if cm.member in seen:
                    raise SiteReferenceError(path, f"member {cm.member!r} is listed twice")
                seen.add(cm.member)
                taken[cm.member].append(community.id)
                if len(taken[cm.member]) > MAX_COMMUNITIES_PER_MEMBER:
                    raise SiteReferenceError(
                        path,
                        f"member {cm.member!r} would be in {len(taken[cm.member])} communities "
                        f"(at most {MAX_COMMUNITIES_PER_MEMBER}): {', '.join(taken[cm.member])}",
                    )
                pct[cm.member] += cm.participation_pct
                if pct[cm.member] > 100:
                    raise SiteReferenceError(
                        ("communities", ci, "members", mi, "participation_pct"),
                        f"member {cm.member!r} takes part with {pct[cm.member]} % in total "
                        "(at most 100 %)",
                    )
            for ki, key in enumerate(community.keys):
                for member in key.shares:
                    if member not in seen:
                        raise SiteReferenceError(
                            ("communities", ci, "keys", ki, "shares", member),
                            f"{member!r} is not a member of community {community.id!r}",
                        )
            starts: dict[datetime, str] = {}
            for ti, name in enumerate(community.tariffs):
                path = ("communities", ci, "tariffs", ti)
                if name not in tariffs:
                    raise SiteReferenceError(path, f"unknown tariff {name!r}")
                start = value_utc(tariffs[name].valid_from)
                if start in starts:
                    raise SiteReferenceError(
                        path, f"tariff {name!r} starts when {starts[start]!r} does"
                    )
                starts[start] = name
            try:
                validate_community(self.settlement_community(community.id))
            except SettlementInputError as exc:
                raise SiteReferenceError(("communities", ci), str(exc)) from exc

    # -- lookups (pure) -------------------------------------------------------------------

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def member(self, member_id: str) -> MemberConfig:
        for m in self.members:
            if m.id == member_id:
                return m
        raise KeyError(member_id)

    def community(self, community_id: str) -> CommunityConfig:
        for c in self.communities:
            if c.id == community_id:
                return c
        raise KeyError(community_id)

    def tariff(self, name: str) -> TariffConfig:
        for t in self.tariffs:
            if t.name == name:
                return t
        raise KeyError(name)

    def members_of(self, community_id: str) -> list[MemberConfig]:
        """The community's members in the order the community lists them."""
        return [self.member(cm.member) for cm in self.community(community_id).members]

    def settlement_community(self, community_id: str) -> Community:
        """Everything settlement needs: memberships, key periods, tariffs (sorted by
        ``valid_from``, UTC) and the emission factor. A first key without ``valid_from``
        holds since :data:`SINCE_EVER`."""
        c = self.community(community_id)
        ids = c.member_ids
        members = tuple(
            Membership(m.member, _utc(m.joined), _utc(m.left), m.participation_pct)
            for m in c.members
        )
        keys = tuple(
            KeyPeriod(value_utc(k.valid_from) if k.valid_from else SINCE_EVER, k.key(ids))
            for k in c.keys
        )
        tariffs = tuple(
            sorted((self.tariff(name).tariff() for name in c.tariffs), key=lambda t: t.valid_from)
        )
        return Community(c.id, members, keys, tariffs, c.emission_factor_g_per_kwh)
