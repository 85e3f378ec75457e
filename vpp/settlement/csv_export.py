"""A member's balances as CSV: one row per bucket (quarter-hour, local day or local month).

Columns: the row's start and end (UTC, ISO 8601, so the 92/100-quarter-hour days stay
unambiguous), quarter-hours and substitute quarter-hours, each metered channel in kWh, then the
settled figures in kWh, the amount in EUR (rounded once to the cent) and the CO₂ avoided in g —
empty where the row is not settled. Every header carries its unit. Pure: the functions write to
a ``TextIO`` the caller opens (an HTTP response buffer, a file) or return a string.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TextIO

from vpp.settlement.balances import Bucket, kwh, plain
from vpp.settlement.statement import round_eur

#: Settled columns (kWh) and the statement figure (Wh) each shows.
SETTLED_COLUMNS = (
    ("consumption_kwh", "consumption_wh"),
    ("generation_kwh", "generation_wh"),
    ("shared_received_kwh", "shared_received_wh"),
    ("shared_delivered_kwh", "shared_delivered_wh"),
    ("residual_kwh", "grid_import_wh"),
    ("surplus_kwh", "grid_export_wh"),
)


def write_balances_csv(buckets: Sequence[Bucket], out: TextIO) -> None:
    """The rows of a balance view with a unit-bearing header (channels sorted by name)."""
    channels = sorted({name for b in buckets for name in b.metered_wh})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "start",
            "end",
            "quarter_hours",
            "substitute_quarter_hours",
            *channels,
            *(c for c, _ in SETTLED_COLUMNS),
            "amount_eur",
            "co2_avoided_g",
        ]
    )
    for b in buckets:
        settled = (
            [kwh(b.settled_wh.get(f, 0)) for _, f in SETTLED_COLUMNS]
            + [str(round_eur(b.amount_eur)), plain(b.co2_g)]
            if b.settled
            else [""] * (len(SETTLED_COLUMNS) + 2)
        )
        writer.writerow(
            [
                b.start.isoformat(),
                b.end.isoformat(),
                b.quarter_hours,
                b.substitute_quarter_hours,
                *(kwh(b.metered_wh[c]) if c in b.metered_wh else "" for c in channels),
                *settled,
            ]
        )


def balances_csv(buckets: Sequence[Bucket]) -> str:
    """:func:`write_balances_csv` into a string."""
    buf = io.StringIO()
    write_balances_csv(buckets, buf)
    return buf.getvalue()
