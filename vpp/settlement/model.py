"""The values a settlement is computed from: community, memberships, keys, tariffs, intervals.

Everything is a frozen dataclass. Energy is whole Wh (``int``), prices are ``Decimal`` EUR per
kWh, emission factors ``Decimal`` grams CO₂ per kWh, instants aware UTC quarter-hour starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from vpp.metering.quality import IntervalQuality
from vpp.settlement.keys import SharingKey

#: A member may take part in at most this many communities (AT EEG multi-participation).
MAX_COMMUNITIES_PER_MEMBER = 5


@dataclass(frozen=True, slots=True)
class Membership:
    """A member of one community, from ``joined`` (inclusive) to ``left`` (exclusive).

    Both are quarter-hour boundaries; ``None`` means "since ever" / "still a member".
    ``participation_pct`` (integer %, AT multi-participation) scales the member's measured
    consumption and generation before allocation; see :mod:`vpp.settlement.settle`.
    """

    member_id: str
    joined: datetime | None = None
    left: datetime | None = None
    participation_pct: int = 100

    def active_at(self, qh_start: datetime) -> bool:
        """True when the quarter-hour starting at ``qh_start`` lies in the membership."""
        after_join = self.joined is None or qh_start >= self.joined
        before_leave = self.left is None or qh_start < self.left
        return after_join and before_leave


@dataclass(frozen=True, slots=True)
class KeyPeriod:
    """The key in force from ``valid_from`` (a quarter-hour boundary) until the next one."""

    valid_from: datetime
    key: SharingKey


@dataclass(frozen=True, slots=True)
class Tariff:
    """Prices in force from ``valid_from`` (EUR per kWh, Decimal, VAT as the site defines).

    * ``community_price``: paid by the receiving member for shared energy and credited to the
      delivering producer;
    * ``supplier_price``: the member's supplier price for residual grid draw;
    * ``feed_in_price``: feed-in or community tariff paid for surplus fed to the grid;
    * ``network_fee_shared`` / ``network_fee_residual``: network fees on shared energy (reduced
      in AT local communities, for instance) and on residual draw; zero where none apply.
    """

    valid_from: datetime
    community_price_eur_per_kwh: Decimal
    supplier_price_eur_per_kwh: Decimal
    feed_in_price_eur_per_kwh: Decimal
    network_fee_shared_eur_per_kwh: Decimal = Decimal(0)
    network_fee_residual_eur_per_kwh: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Community:
    """One energy-sharing community: who is in it, which key and which prices apply when.

    ``emission_factor_g_per_kwh`` is the grid emission factor used for CO₂ avoided; it is data
    (site file), not a constant, because published factors change yearly.
    """

    community_id: str
    members: tuple[Membership, ...]
    keys: tuple[KeyPeriod, ...]
    tariffs: tuple[Tariff, ...]
    emission_factor_g_per_kwh: Decimal

    @property
    def member_ids(self) -> tuple[str, ...]:
        """Member ids in sorted order: the column order and the tie rule of allocation."""
        return tuple(sorted(m.member_id for m in self.members))

    def membership(self, member_id: str) -> Membership:
        for m in self.members:
            if m.member_id == member_id:
                return m
        raise KeyError(member_id)


@dataclass(frozen=True, slots=True)
class MemberInterval:
    """Metered energy of one member in one quarter-hour (whole Wh, at the grid point).

    ``consumption_wh`` is import, ``generation_wh`` export at the member's grid connection;
    ``own_generation_used_wh`` is PV behind the meter used on site (0 where not metered).
    """

    member_id: str
    qh_start: datetime
    consumption_wh: int
    generation_wh: int = 0
    own_generation_used_wh: int = 0
    quality: IntervalQuality = IntervalQuality.L1


@dataclass(frozen=True, slots=True)
class SettlementInputs:
    """Everything one settlement run of ``[period_start, period_end)`` depends on."""

    community: Community
    period_start: datetime
    period_end: datetime
    intervals: tuple[MemberInterval, ...] = field(default=())
