"""The site file's communities: tariffs, sharing keys, memberships; dispatch and settlement
settings."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Literal, Self

from pydantic import (
    AwareDatetime,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scheduler.site.fields import Id, LocalTime, Price, _invalid, _Model, _on_qh, value_utc
from vpp.settlement.errors import KeyConfigError
from vpp.settlement.keys import (
    SharingKey,
    constant_key,
    contract_key,
    dynamic_key,
    proportional_key,
    static_key,
)
from vpp.settlement.model import (
    Tariff,
)


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
