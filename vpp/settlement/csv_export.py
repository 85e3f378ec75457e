"""CSV export of statements: one row per member and quarter-hour, and balance summaries.

Pure: the functions write to a ``TextIO`` the caller opens (a file, a ``StringIO``, an HTTP
response buffer) or return a string. Every column header carries its unit (``_wh``, ``_eur``,
``_g``); quarter-hours are given as the UTC start and as local time with its offset, so the
92/100-quarter-hour days stay unambiguous. Quarter-hour money is exact (as many decimals as it
has); balance money is rounded to cents by the settlement's one rule.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import TextIO
from zoneinfo import ZoneInfo

from kernel.quarterhours import BERLIN
from vpp.settlement.balances import Balance
from vpp.settlement.runs import LineChange
from vpp.settlement.statement import ENERGY_FIELDS, MONEY_FIELDS, StatementLine

LINE_HEADER = (
    "member_id",
    "qh_start_utc",
    "qh_start_local",
    "quality",
    *ENERGY_FIELDS,
    *MONEY_FIELDS,
    "net_eur",
    "co2_avoided_g",
    "at_consumer_G01_consumption_wh",
    "at_consumer_G02_community_share_wh",
    "at_consumer_G03_self_coverage_wh",
    "at_producer_G01_generation_wh",
    "at_producer_P01_surplus_wh",
)

BALANCE_HEADER = (
    "member_id",
    "period",
    "first_day_local",
    "quarter_hours",
    "substitute_quarter_hours",
    *ENERGY_FIELDS,
    *MONEY_FIELDS,
    "net_eur",
    "co2_avoided_g",
)


def write_lines_csv(lines: Iterable[StatementLine], out: TextIO, tz: ZoneInfo = BERLIN) -> None:
    """One row per member and quarter-hour, with a unit-bearing header."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LINE_HEADER)
    for ln in lines:
        codes = ln.at_codes()
        writer.writerow(
            (
                ln.member_id,
                ln.qh_start.isoformat(),
                ln.qh_start.astimezone(tz).isoformat(),
                ln.quality.value,
                *(getattr(ln, f) for f in ENERGY_FIELDS),
                *(getattr(ln, f) for f in MONEY_FIELDS),
                ln.net_eur,
                ln.co2_avoided_g,
                codes["consumption"]["G.01"],
                codes["consumption"]["G.02"],
                codes["consumption"]["G.03"],
                codes["generation"]["G.01"],
                codes["generation"]["P.01"],
            )
        )


def write_balances_csv(rows: Iterable[Balance], out: TextIO) -> None:
    """One row per member (and the community) and day or month."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BALANCE_HEADER)
    for b in rows:
        writer.writerow(
            (
                b.member_id,
                b.period.value,
                b.first_day.isoformat(),
                b.quarter_hours,
                b.substitute_quarter_hours,
                *(b.energy_wh[f] for f in ENERGY_FIELDS),
                *(b.money_eur[f] for f in MONEY_FIELDS),
                b.net_eur,
                b.co2_avoided_g,
            )
        )


def lines_csv(lines: Iterable[StatementLine], tz: ZoneInfo = BERLIN) -> str:
    """:func:`write_lines_csv` into a string."""
    buf = io.StringIO()
    write_lines_csv(lines, buf, tz)
    return buf.getvalue()


def balances_csv(rows: Iterable[Balance]) -> str:
    """:func:`write_balances_csv` into a string."""
    buf = io.StringIO()
    write_balances_csv(rows, buf)
    return buf.getvalue()


CHANGE_HEADER = ("member_id", "qh_start_utc", "qh_start_local", "field", "old", "new", "delta")


def write_changes_csv(changes: Iterable[LineChange], out: TextIO, tz: ZoneInfo = BERLIN) -> None:
    """A restatement's differences, one row per changed field (units: the field's suffix)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CHANGE_HEADER)
    for ch in changes:
        delta = ch.delta
        writer.writerow(
            (
                ch.member_id,
                ch.qh_start.isoformat(),
                ch.qh_start.astimezone(tz).isoformat(),
                ch.field,
                "" if ch.old is None else ch.old,
                "" if ch.new is None else ch.new,
                "" if delta is None else delta,
            )
        )
