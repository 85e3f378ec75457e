"""Statement lines: one member, one quarter-hour, energy and money, and the one rounding rule.

**Energy** is whole Wh. **Money** per quarter-hour is exact: ``Wh × EUR/kWh ÷ 1000`` as a
``Decimal`` with no rounding at all (a Wh count times a price with a few decimals is exact).
**The rounding rule**: an amount is rounded exactly once, when it is shown as a line item of a
balance (a day, a month, a CSV summary row): the exact sum of the quarter-hour amounts is
rounded to 0.01 EUR with ``ROUND_HALF_EVEN`` (:func:`round_eur`). So a monthly line item equals
its rounded exact sum, independent of how many quarter-hours it covers, and no fraction of a cent
is lost quarter-hour by quarter-hour.

**CO₂ avoided** is the shared energy a member received times the grid emission factor (grams
per kWh): energy from the community that did not come from the grid. It is counted at the
receiving member only, so a community total does not count a shared kWh twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from vpp.metering.quality import IntervalQuality
from vpp.settlement.model import Tariff

CENT = Decimal("0.01")


def round_eur(amount: Decimal) -> Decimal:
    """The settlement's single rounding rule: to 0.01 EUR, half to even."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def energy_cost_eur(energy_wh: int, price_eur_per_kwh: Decimal) -> Decimal:
    """Exact money for ``energy_wh`` at ``price_eur_per_kwh`` (no rounding)."""
    return (Decimal(energy_wh) * price_eur_per_kwh).scaleb(-3)


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One member in one quarter-hour (Wh; EUR exact; g CO₂).

    Energy (all scaled by the member's participation factor in this community):
    ``consumption_wh`` import at the grid point, ``generation_wh`` export at the grid point,
    ``own_generation_used_wh`` PV behind the meter used on site, ``received_wh`` shared energy
    allocated to the member, ``delivered_wh`` shared energy the member delivered as a producer,
    ``residual_wh = consumption − received`` drawn from the supplier, ``surplus_wh =
    generation − delivered`` fed to the grid outside the community.
    """

    member_id: str
    qh_start: datetime
    quality: IntervalQuality
    consumption_wh: int
    generation_wh: int
    own_generation_used_wh: int
    received_wh: int
    delivered_wh: int
    residual_wh: int
    surplus_wh: int
    shared_cost_eur: Decimal
    residual_cost_eur: Decimal
    network_fee_eur: Decimal
    shared_revenue_eur: Decimal
    surplus_revenue_eur: Decimal
    co2_avoided_g: Decimal

    @property
    def net_eur(self) -> Decimal:
        """What the member owes for this quarter-hour (negative: is owed), exact."""
        return (
            self.shared_cost_eur
            + self.residual_cost_eur
            + self.network_fee_eur
            - self.shared_revenue_eur
            - self.surplus_revenue_eur
        )

    def at_codes(self) -> dict[str, dict[str, int]]:
        """Austrian data-exchange values (Wh) of the consumption and the generation point."""
        return {
            "consumption": {
                "G.01": self.consumption_wh,
                "G.02": self.received_wh,
                "G.03": self.own_generation_used_wh,
            },
            "generation": {"G.01": self.generation_wh, "P.01": self.surplus_wh},
        }


#: Energy fields of a line, in the order statements and CSV show them.
ENERGY_FIELDS = (
    "consumption_wh",
    "generation_wh",
    "own_generation_used_wh",
    "received_wh",
    "delivered_wh",
    "residual_wh",
    "surplus_wh",
)
#: Money fields of a line (EUR, exact per quarter-hour).
MONEY_FIELDS = (
    "shared_cost_eur",
    "residual_cost_eur",
    "network_fee_eur",
    "shared_revenue_eur",
    "surplus_revenue_eur",
)


def build_line(
    *,
    member_id: str,
    qh_start: datetime,
    quality: IntervalQuality,
    consumption_wh: int,
    generation_wh: int,
    own_generation_used_wh: int,
    received_wh: int,
    delivered_wh: int,
    tariff: Tariff,
    emission_factor_g_per_kwh: Decimal,
) -> StatementLine:
    """A statement line from allocated energy and the tariff in force."""
    residual_wh = consumption_wh - received_wh
    surplus_wh = generation_wh - delivered_wh
    return StatementLine(
        member_id=member_id,
        qh_start=qh_start,
        quality=quality,
        consumption_wh=consumption_wh,
        generation_wh=generation_wh,
        own_generation_used_wh=own_generation_used_wh,
        received_wh=received_wh,
        delivered_wh=delivered_wh,
        residual_wh=residual_wh,
        surplus_wh=surplus_wh,
        shared_cost_eur=energy_cost_eur(received_wh, tariff.community_price_eur_per_kwh),
        residual_cost_eur=energy_cost_eur(residual_wh, tariff.supplier_price_eur_per_kwh),
        network_fee_eur=energy_cost_eur(received_wh, tariff.network_fee_shared_eur_per_kwh)
        + energy_cost_eur(residual_wh, tariff.network_fee_residual_eur_per_kwh),
        shared_revenue_eur=energy_cost_eur(delivered_wh, tariff.community_price_eur_per_kwh),
        surplus_revenue_eur=energy_cost_eur(surplus_wh, tariff.feed_in_price_eur_per_kwh),
        co2_avoided_g=energy_cost_eur(received_wh, emission_factor_g_per_kwh),
    )
