"""The site file: the world a Waldstadt service runs (devices, members, communities, lighting).

One YAML document, validated by pydantic models that forbid unknown keys, so that every error
is one :class:`~kernel.errors.ConfigError` naming the key path, the reason, the file and the
line (``members.3.pv.0.device: unknown device 'hh04-pv' (site.yaml, line 41)``). After the
shape, the cross references are checked: devices, meters, community members, key shares and
tariffs must name things that exist, a device serves one role only, a member takes part in at
most five communities. The ``lighting:`` section is :class:`lighting.config.LightingConfig`
unchanged. The reference of every key is ``docs/site.md``; a complete example is
``examples/site.yaml``.

Clock times (``arrival``, ``window_start`` …) must be quoted (``"18:00"``): unquoted, YAML 1.1
reads 18:00 as the number 1080.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kernel.config import Path_, parse_yaml, validate_data
from kernel.errors import ConfigError
from kernel.quarterhours import is_qh_boundary
from lighting.config import LightingConfig
from protocols.modbus.factory import SUNSPEC, known_drivers
from protocols.modbus.template import load_template
from vpp.settlement.errors import KeyConfigError, SettlementInputError
from vpp.settlement.keys import (
    SharingKey,
    constant_key,
    contract_key,
    dynamic_key,
    proportional_key,
    static_key,
)
from vpp.settlement.model import (
    MAX_COMMUNITIES_PER_MEMBER,
    Community,
    KeyPeriod,
    Membership,
    Tariff,
)
from vpp.settlement.validate import validate_community

#: ``valid_from`` of a first key given without one ("since ever"): the quarter-hour epoch.
SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)

_ID = r"^[a-z0-9][a-z0-9_-]*$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _invalid(reason: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``reason`` (no "Value error, " prefix)."""
    return PydanticCustomError("site", "{reason}", {"reason": reason})


def _clock_text(value: object) -> object:
    """Accept only quoted ``"HH:MM"`` (or a ``time``): an unquoted 18:00 is YAML's 1080."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise _invalid(f'a clock time must be quoted text "HH:MM", got {value!r}')
    if not _CLOCK.match(value):
        raise _invalid(f'{value!r} is not "HH:MM"')
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


#: A local wall-clock time, written ``"HH:MM"``.
LocalTime = Annotated[time, BeforeValidator(_clock_text)]
Id = Annotated[str, Field(pattern=_ID)]
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _on_qh(value: datetime | None, what: str) -> datetime | None:
    if value is not None and not is_qh_boundary(value):
        raise _invalid(f"{what} {value.isoformat()} is not on a quarter-hour boundary")
    return value


def value_utc(value: datetime) -> datetime:
    """An aware instant in UTC (the settlement core's convention)."""
    return value.astimezone(UTC)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Model):
    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = "Europe/Berlin"
    #: German state code (``NW``, ``BY`` …) for public holidays
    state: str = "NW"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _invalid(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("state")
    @classmethod
    def _known_state(cls, value: str) -> str:
        states = sorted(s for s in holidays.list_supported_countries()["DE"] if len(s) == 2)
        if value not in states:
            raise _invalid(f"unknown German state {value!r}; known: {', '.join(states)}")
        return value


class DeviceConfig(_Model):
    name: Id
    #: ``sunspec`` (model chain discovered) or a register template in protocols/templates
    driver: str
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=1, le=247)
    timeout_s: float = Field(default=1.0, gt=0)

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        drivers = known_drivers()
        if value not in drivers:
            raise _invalid(f"unknown driver {value!r}; known: {', '.join(drivers)}")
        return value


class TariffConfig(_Model):
    name: str = Field(min_length=1)
    valid_from: AwareDatetime
    supplier_price_eur_per_kwh: Price
    community_price_eur_per_kwh: Price
    feed_in_price_eur_per_kwh: Price
    network_fee_shared_eur_per_kwh: Price = Decimal(0)
    network_fee_residual_eur_per_kwh: Price = Decimal(0)

    @field_validator("valid_from")
    @classmethod
    def _quarter_hour(cls, value: datetime) -> datetime:
        return _on_qh(value, "valid_from") or value

    def tariff(self) -> Tariff:
        return Tariff(
            valid_from=value_utc(self.valid_from),
            community_price_eur_per_kwh=self.community_price_eur_per_kwh,
            supplier_price_eur_per_kwh=self.supplier_price_eur_per_kwh,
            feed_in_price_eur_per_kwh=self.feed_in_price_eur_per_kwh,
            network_fee_shared_eur_per_kwh=self.network_fee_shared_eur_per_kwh,
            network_fee_residual_eur_per_kwh=self.network_fee_residual_eur_per_kwh,
        )


class PvConfig(_Model):
    device: str
    rated_power_w: float = Field(gt=0)
    curtailable: bool = True


class BatteryConfig(_Model):
    device: str
    capacity_wh: float = Field(gt=0)
    max_charge_w: float = Field(gt=0)
    max_discharge_w: float = Field(gt=0)
    min_soc_pct: float = Field(default=10.0, ge=0, le=100)


class EvConfig(_Model):
    device: str
    max_power_w: float = Field(gt=0)
    energy_needed_wh: float = Field(ge=0)
    arrival: LocalTime = time(18, 0)
    departure: LocalTime = time(7, 0)
    smart_charging: bool = False


class StorageHeaterConfig(_Model):
    device: str
    max_power_w: float = Field(gt=0)
    energy_needed_wh: float = Field(ge=0)
    window_start: LocalTime = time(22, 0)
    window_end: LocalTime = time(6, 0)


class MemberConfig(_Model):
    id: Id
    #: display name; private to the member and the operator
    name: str = Field(min_length=1)
    #: device name of the grid-point meter (a driver that reads import and export energy)
    meter: str
    load_profile: Literal["H25", "G25", "P25", "S25"] = "H25"
    annual_kwh: float = Field(default=4000.0, gt=0)
    pv: list[PvConfig] = Field(default_factory=list)
    battery: BatteryConfig | None = None
    ev: EvConfig | None = None
    storage_heater: StorageHeaterConfig | None = None

    def device_roles(self) -> list[tuple[Path_, str]]:
        """(key path within the member, device name) of every device the member uses."""
        roles: list[tuple[Path_, str]] = [(("meter",), self.meter)]
        roles += [(("pv", i, "device"), pv.device) for i, pv in enumerate(self.pv)]
        for role in ("battery", "ev", "storage_heater"):
            cfg = getattr(self, role)
            if cfg is not None:
                roles.append(((role, "device"), cfg.device))
        return roles


KeyKindName = Literal["static", "dynamic", "constant", "proportional", "contract"]
_SHARE_KINDS = {"static", "constant", "contract"}


class KeyConfig(_Model):
    kind: KeyKindName
    #: member id → share of generation (static, constant, contract); Σ ≤ 1
    shares: dict[str, Decimal] = Field(default_factory=dict)
    reoffer: bool = False
    valid_from: AwareDatetime | None = None

    @field_validator("shares")
    @classmethod
    def _shares_hold(cls, shares: dict[str, Decimal]) -> dict[str, Decimal]:
        try:
            static_key(shares)  # each in [0, 1], Σ ≤ 1, a usable common denominator
        except KeyConfigError as exc:
            who = f"{exc.member_id}: " if exc.member_id else ""
            raise _invalid(who + exc.reason) from exc
        return shares

    @field_validator("valid_from")
    @classmethod
    def _quarter_hour(cls, value: datetime | None) -> datetime | None:
        return _on_qh(value, "valid_from")

    @model_validator(mode="after")
    def _kind_fits(self) -> Self:
        if self.kind in _SHARE_KINDS and not self.shares:
            raise _invalid(f"a {self.kind} key needs shares (member id → fraction)")
        if self.kind not in _SHARE_KINDS and self.shares:
            raise _invalid(f"a {self.kind} key splits by consumption; it takes no shares")
        if self.reoffer and self.kind != "contract":
            raise _invalid("reoffer applies to contract keys only")
        return self

    def key(self, member_ids: list[str]) -> SharingKey:
        """The settlement core's key; ``member_ids`` are the community's members."""
        if self.kind == "static":
            return static_key(self.shares)
        if self.kind == "dynamic":
            return dynamic_key()
        if self.kind == "constant":
            return constant_key(member_ids, self.shares)
        if self.kind == "proportional":
            return proportional_key()
        return contract_key(self.shares, reoffer=self.reoffer)


class CommunityMemberConfig(_Model):
    member: str
    joined: AwareDatetime | None = None
    left: AwareDatetime | None = None
    participation_pct: int = Field(default=100, ge=1, le=100)

    @field_validator("joined", "left")
    @classmethod
    def _quarter_hour(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return _on_qh(value, str(info.field_name))

    @model_validator(mode="after")
    def _joins_before_leaving(self) -> Self:
        if self.joined is not None and self.left is not None and self.left <= self.joined:
            raise _invalid("left is not after joined")
        return self


class CommunityConfig(_Model):
    id: Id
    name: str = Field(min_length=1)
    members: list[CommunityMemberConfig] = Field(min_length=1)
    keys: list[KeyConfig] = Field(min_length=1)
    tariffs: list[str] = Field(min_length=1)
    emission_factor_g_per_kwh: Decimal = Field(default=Decimal(380), ge=0, allow_inf_nan=False)
    feeder_import_limit_w: float | None = Field(default=None, gt=0)
    feeder_export_limit_w: float | None = Field(default=None, gt=0)

    @field_validator("keys")
    @classmethod
    def _keys_in_order(cls, keys: list[KeyConfig]) -> list[KeyConfig]:
        for i, key in enumerate(keys[1:], start=1):
            prev = keys[i - 1].valid_from
            if key.valid_from is None:
                raise _invalid(f"key {i} has no valid_from; only the first key may omit it")
            if prev is not None and key.valid_from <= prev:
                raise _invalid(f"key {i} is not later than key {i - 1} (sort by valid_from)")
        return keys

    @property
    def member_ids(self) -> list[str]:
        return [m.member for m in self.members]


class DispatchConfig(_Model):
    horizon_qh: int = Field(default=96, ge=4, le=192)
    solve_time_limit_s: float = Field(default=60.0, gt=0)
    #: every setpoint falls back by itself this long after its last write
    revert_s: int = Field(default=900, ge=60, le=3600)
    poll_interval_s: float = Field(default=60.0, gt=0)
    read_timeout_s: float = Field(default=2.0, gt=0)


class SettlementConfig(_Model):
    #: local time of the final run of the previous day
    final_at: LocalTime = time(1, 0)


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
    lighting: LightingConfig | None = None

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

    def _check_members(self) -> None:
        _duplicates("members", "id", [m.id for m in self.members])
        devices = {d.name: d for d in self.devices}
        used: dict[str, Path_] = {}
        for i, member in enumerate(self.members):
            for sub, name in member.device_roles():
                path: Path_ = ("members", i, *sub)
                if name not in devices:
                    raise SiteReferenceError(path, f"unknown device {name!r}")
                if name in used:
                    raise SiteReferenceError(
                        path, f"device {name!r} is already used as {_dotted(used[name])}"
                    )
                used[name] = path
            driver = devices[member.meter].driver
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


def _reference_error(exc: ConfigError) -> SiteReferenceError | None:
    cause = exc.__cause__
    if not isinstance(cause, ValidationError):
        return None
    for err in cause.errors():
        found = (err.get("ctx") or {}).get("error")
        if isinstance(found, SiteReferenceError):
            return found
    return None


def _validate(data: Any, name: str, lines: dict[Path_, int] | None) -> Site:
    try:
        return validate_data(Site, data, name, lines)
    except ConfigError as exc:
        ref = _reference_error(exc)
        if ref is None:
            raise
        probe = ref.path
        while probe and lines is not None and probe not in lines:
            probe = probe[:-1]
        line = (lines or {}).get(probe)
        where = f"{name}, line {line}" if line else name
        raise ConfigError(_dotted(ref.path), ref.reason, where) from exc


def load_site_text(text: str, name: str = "site.yaml") -> Site:
    """Parse and validate a site file's text; ``name`` is used in error messages."""
    data, lines = parse_yaml(text, name)
    return _validate(data, name, lines)


def load_site(path: Path | str) -> Site:
    """Load and validate a site file; any problem is one :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read {p}: {exc.strerror}", str(p)) from exc
    return load_site_text(text, p.name)


def site_from_data(data: dict[str, Any], name: str = "<site>") -> Site:
    """Validate a site given as data (a generated site, the demo's town)."""
    return _validate(data, name, None)
