"""Daily and monthly balances per member and for the community.

A balance sums statement lines over a local day or a local calendar month (Europe/Berlin by
default, so a day has 92, 96 or 100 quarter-hours). Energy sums are exact integers. Money sums
are exact and then rounded once per line item (:func:`vpp.settlement.statement.round_eur`);
``net_eur`` is the rounded exact net, not the sum of the rounded items; the two can differ by at
most 3 cents (six roundings of at most half a cent each). Both are shown, neither adjusted.

The community balance (``member_id`` = :data:`COMMUNITY`) sums every member's lines; it is the
aggregate members may see of each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from kernel.quarterhours import BERLIN
from vpp.settlement.statement import ENERGY_FIELDS, MONEY_FIELDS, StatementLine, round_eur

#: ``member_id`` of the community-wide balance.
COMMUNITY = "*community*"


class BalancePeriod(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Balance:
    """Sums over one local day or month. Energy in Wh, money in EUR rounded to cents."""

    member_id: str
    period: BalancePeriod
    first_day: date
    quarter_hours: int
    substitute_quarter_hours: int
    energy_wh: dict[str, int]
    money_eur: dict[str, Decimal]
    net_eur: Decimal
    co2_avoided_g: Decimal


def _period_start(line: StatementLine, period: BalancePeriod, tz: ZoneInfo) -> date:
    local = line.qh_start.astimezone(tz).date()
    return local if period is BalancePeriod.DAY else local.replace(day=1)


def balances(
    lines: Iterable[StatementLine],
    period: BalancePeriod = BalancePeriod.MONTH,
    tz: ZoneInfo = BERLIN,
) -> tuple[Balance, ...]:
    """Balances per member and for the community, sorted by period start, then member id."""
    groups: dict[tuple[date, str], list[StatementLine]] = defaultdict(list)
    for line in lines:
        start = _period_start(line, period, tz)
        groups[(start, line.member_id)].append(line)
        groups[(start, COMMUNITY)].append(line)
    out: list[Balance] = []
    for (start, member_id), group in sorted(groups.items(), key=_order):
        qh = {ln.qh_start for ln in group}
        substitute = {ln.qh_start for ln in group if ln.quality.is_substitute}
        money_exact = {f: sum((getattr(ln, f) for ln in group), Decimal(0)) for f in MONEY_FIELDS}
        out.append(
            Balance(
                member_id=member_id,
                period=period,
                first_day=start,
                quarter_hours=len(qh),
                substitute_quarter_hours=len(substitute),
                energy_wh={f: sum(getattr(ln, f) for ln in group) for f in ENERGY_FIELDS},
                money_eur={f: round_eur(v) for f, v in money_exact.items()},
                net_eur=round_eur(sum((ln.net_eur for ln in group), Decimal(0))),
                co2_avoided_g=sum((ln.co2_avoided_g for ln in group), Decimal(0)),
            )
        )
    return tuple(out)


def _order(item: tuple[tuple[date, str], list[StatementLine]]) -> tuple[date, int, str]:
    (start, member_id), _ = item
    return start, member_id == COMMUNITY, member_id


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """How a restatement changes one balance line item (Wh, or EUR rounded to the cent)."""

    member_id: str
    first_day: date
    field: str
    old: int | Decimal
    new: int | Decimal

    @property
    def delta(self) -> int | Decimal:
        return self.new - self.old


def balance_changes(old: Iterable[Balance], new: Iterable[Balance]) -> tuple[BalanceChange, ...]:
    """Line items that differ between two sets of balances of the same periods.

    What a member sees after a restatement: "your July residual draw is 160 Wh more,
    +0.06 EUR". A balance present on one side only counts from zero.
    """
    a = {(b.first_day, b.member_id): b for b in old}
    b_ = {(b.first_day, b.member_id): b for b in new}
    changes: list[BalanceChange] = []
    for first_day, member_id in sorted(a.keys() | b_.keys(), key=lambda k: (k[0], *_rank(k[1]))):
        x, y = a.get((first_day, member_id)), b_.get((first_day, member_id))
        for name in (*ENERGY_FIELDS, *MONEY_FIELDS, "net_eur"):
            vx, vy = _item(x, name), _item(y, name)
            if vx != vy:
                changes.append(BalanceChange(member_id, first_day, name, vx, vy))
    return tuple(changes)


def _rank(member_id: str) -> tuple[bool, str]:
    return member_id == COMMUNITY, member_id


def _item(balance: Balance | None, name: str) -> int | Decimal:
    if balance is None:
        return Decimal(0) if name.endswith("_eur") else 0
    if name == "net_eur":
        return balance.net_eur
    if name in balance.energy_wh:
        return balance.energy_wh[name]
    return balance.money_eur[name]
