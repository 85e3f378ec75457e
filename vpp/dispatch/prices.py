"""The dispatch's prices per quarter-hour from the community's tariffs.

The tariff in force in a quarter-hour is the one with the newest ``valid_from`` at or before
its start (the same tariffs the settlement bills with, :class:`vpp.settlement.model.Tariff`).
What a member pays for grid draw is the supplier price plus the network fee on residual draw;
what it gets for export is the feed-in price; shared energy costs the community price plus the
(reduced) network fee on shared energy. All in EUR per kWh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kernel.quarterhours import QH
from vpp.dispatch.community import Prices
from vpp.dispatch.errors import InvalidDispatchInput
from vpp.settlement.model import Tariff


def tariff_prices(tariffs: Sequence[Tariff], start: datetime, n_qh: int) -> Prices:
    """Prices for the ``n_qh`` quarter-hours from ``start`` (UTC).

    Raises :class:`~vpp.dispatch.errors.InvalidDispatchInput` (field ``tariffs``) when no
    tariff is in force in some quarter-hour."""
    ordered = sorted(tariffs, key=lambda t: t.valid_from)
    imp: list[float] = []
    feed: list[float] = []
    comm: list[float] = []
    fee: list[float] = []
    for k in range(n_qh):
        t = start + k * QH
        in_force = [x for x in ordered if x.valid_from <= t]
        if not in_force:
            reason = (
                f"no tariff of the community is in force at {t.isoformat()} "
                f"(earliest valid_from {ordered[0].valid_from.isoformat()})"
                if ordered
                else "the community has no tariff"
            )
            raise InvalidDispatchInput(None, None, "tariffs", reason)
        x = in_force[-1]
        imp.append(float(x.supplier_price_eur_per_kwh + x.network_fee_residual_eur_per_kwh))
        feed.append(float(x.feed_in_price_eur_per_kwh))
        comm.append(float(x.community_price_eur_per_kwh))
        fee.append(float(x.network_fee_shared_eur_per_kwh))
    return Prices(tuple(imp), tuple(feed), tuple(comm), tuple(fee))
