"""Mieterstrom (DE §42a EnWG), sum-meter model: local PV for tenants behind one grid meter.

The building has one bidirectional main meter at the grid point and a sub-meter per flat.
Tenants who take part buy local PV power (and full supply from the Mieterstrom supplier);
the others keep their own supplier, who is deemed to have delivered all they consumed. So, per
quarter-hour (Wh):

* participants' grid draw ``R = max(0, main-meter import − Σ non-participant consumption)``
  (docs/domain.md §2), at most ``Σ`` participant consumption — where sub-meters and main meter
  disagree by more, the difference is not attributed to participants;
* local supply ``L = Σ participant consumption − R``;
* both are split among participants in proportion to their consumption by the largest-remainder
  rule of :mod:`vpp.settlement.apportion`, so every tenant gets ``local_i + grid_i = C_i``.

The Mieterstrom price may be at most 90 % of the local basic-supply tariff
(:func:`check_mieterstrom_price`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from vpp.settlement.apportion import apportion
from vpp.settlement.errors import SettlementInputError

#: §42a(4) EnWG: Mieterstrom price at most this fraction of the basic-supply tariff.
PRICE_CAP_FRACTION = Decimal("0.9")


@dataclass(frozen=True, slots=True)
class MieterstromQuarterHour:
    """Split of one quarter-hour among participating tenants (Wh, sorted tenant ids)."""

    qh_start: datetime
    tenant_ids: tuple[str, ...]
    local_supply_wh: tuple[int, ...]
    grid_draw_wh: tuple[int, ...]

    @property
    def total_grid_draw_wh(self) -> int:
        return sum(self.grid_draw_wh)

    @property
    def total_local_supply_wh(self) -> int:
        return sum(self.local_supply_wh)


def split_sum_meter(
    qh_start: datetime,
    main_import_wh: int,
    participant_consumption_wh: Mapping[str, int],
    non_participant_consumption_wh: Mapping[str, int],
) -> MieterstromQuarterHour:
    """Split one quarter-hour of a sum-meter Mieterstrom building (see module doc)."""
    if main_import_wh < 0:
        raise SettlementInputError(
            f"negative energy {main_import_wh} Wh",
            member_id="main meter",
            interval=qh_start,
            field="main_import_wh",
        )
    both = set(participant_consumption_wh) & set(non_participant_consumption_wh)
    if both:
        raise SettlementInputError(
            "tenant listed as participant and as non-participant",
            member_id=sorted(both)[0],
            interval=qh_start,
            field="tenant_id",
        )
    for table in (participant_consumption_wh, non_participant_consumption_wh):
        for tenant_id, value in table.items():
            if value < 0:
                raise SettlementInputError(
                    f"negative energy {value} Wh",
                    member_id=tenant_id,
                    interval=qh_start,
                    field="consumption_wh",
                )
    ids = tuple(sorted(participant_consumption_wh))
    consumption = [participant_consumption_wh[t] for t in ids]
    total = sum(consumption)
    grid = min(total, max(0, main_import_wh - sum(non_participant_consumption_wh.values())))
    local = apportion(total - grid, consumption)
    return MieterstromQuarterHour(
        qh_start=qh_start,
        tenant_ids=ids,
        local_supply_wh=tuple(local),
        grid_draw_wh=tuple(c - x for c, x in zip(consumption, local, strict=True)),
    )


def check_mieterstrom_price(
    price_eur_per_kwh: Decimal, basic_supply_price_eur_per_kwh: Decimal
) -> None:
    """Refuse a Mieterstrom price above 90 % of the basic-supply tariff (§42a(4) EnWG)."""
    cap = basic_supply_price_eur_per_kwh * PRICE_CAP_FRACTION
    if price_eur_per_kwh > cap:
        raise SettlementInputError(
            f"Mieterstrom price {price_eur_per_kwh} EUR/kWh exceeds 90 % of the basic-supply "
            f"tariff ({cap} EUR/kWh)",
            field="mieterstrom_price_eur_per_kwh",
        )
