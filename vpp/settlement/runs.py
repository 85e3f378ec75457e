"""Versioned settlement runs of a local day: which version to add, and what it says.

A community's local day ``[local midnight, next local midnight)`` (92, 96 or 100
quarter-hours) is settled again and again; every result is stored as a new *version* of that
period, never changed afterwards, so that any figure a member was ever shown can be reproduced.
The rules of :func:`next_version`:

* a **provisional** run settles the day so far (its inputs end at ``through``); a **final** run
  the whole day, once it has ended;
* a run whose inputs have the same :func:`fingerprint` (every interval, key, tariff and
  membership) as the newest version of the same kind adds no version;
* a provisional run is never added over a final one;
* a final run over a final one with other inputs (late meter data) is a **restatement**: its
  details name the version it restates and, per member, every statement figure that changed
  (old, new, delta).

A :class:`Statement` is a member's sum over the period's statement lines: whole Wh, money
summed exactly and rounded once to the cent (:func:`vpp.settlement.statement.round_eur`),
CO₂ to the milligram. A final run's statements also carry the quarter-hour lines
(``details["lines"]``), so a member can see each quarter-hour and the sums can be checked.
Pure: the runtime reads the inputs and the newest stored version, and stores what this returns.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from kernel.quarterhours import QH
from vpp.metering.quality import IntervalQuality, worst
from vpp.settlement.model import SettlementInputs
from vpp.settlement.settle import settle_lines
from vpp.settlement.statement import ENERGY_FIELDS, MONEY_FIELDS, StatementLine, round_eur

_MG = Decimal("0.001")
#: Quarter-hour series a final statement carries in ``details["lines"]``.
LINE_FIELDS = ("consumption_wh", "generation_wh", "received_wh", "delivered_wh")
#: Statement figures a restatement compares, in the order it lists them.
CHANGE_FIELDS = (
    "consumption_wh",
    "generation_wh",
    "shared_received_wh",
    "shared_delivered_wh",
    "grid_import_wh",
    "grid_export_wh",
    "amount_eur",
)


class RunKind(StrEnum):
    PROVISIONAL = "provisional"
    FINAL = "final"


@dataclass(frozen=True, slots=True)
class Statement:
    """One member's figures for a run's period: Wh (exact), EUR (exact, to the cent), g CO₂.

    ``grid_import_wh`` is the residual drawn from the supplier (consumption − shared received),
    ``grid_export_wh`` the surplus fed to the grid outside the community."""

    member_id: str
    consumption_wh: Decimal
    generation_wh: Decimal
    shared_received_wh: Decimal
    shared_delivered_wh: Decimal
    grid_import_wh: Decimal
    grid_export_wh: Decimal
    amount_eur: Decimal
    co2_g: Decimal = Decimal(0)
    details: dict[str, Any] = field(default_factory=dict)


class StoredRun(Protocol):
    """The newest stored version of a period, as far as the rules look at it."""

    @property
    def version(self) -> int: ...
    @property
    def details(self) -> Mapping[str, Any]: ...
    @property
    def statements(self) -> Sequence[Statement]: ...


@dataclass(frozen=True, slots=True)
class DayInputs:
    """What one run of one local day is computed from, and which members metering missed.

    ``inputs`` run from the day's first quarter-hour to ``through`` (``day_end`` for a final
    run); ``missing_members`` are active members without any metered value in that stretch."""

    inputs: SettlementInputs
    day: date
    day_end: datetime
    missing_members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to append: why (``reason``), the members' statements and the run's details."""

    reason: str
    statements: tuple[Statement, ...]
    details: dict[str, Any]


def fingerprint(inputs: SettlementInputs) -> str:
    """SHA-256 of the inputs' canonical text (frozen dataclasses have a deterministic repr)."""
    return hashlib.sha256(repr(inputs).encode()).hexdigest()


def next_version(
    day: DayInputs, kind: RunKind, newest: StoredRun | None, tz: ZoneInfo
) -> NewVersion | None:
    """The version ``day`` adds over ``newest`` (the newest stored version of the day), or None
    when it adds nothing (see the module doc). ``tz`` is the site's zone, for the reason text.

    Bad inputs raise :class:`~vpp.settlement.errors.SettlementInputError` (naming member,
    interval and field) before anything is returned, so nothing half-made can be stored.
    """
    fp = fingerprint(day.inputs)
    restates: int | None = None
    if newest is not None:
        newest_kind = newest.details.get("kind")
        if kind is RunKind.PROVISIONAL and newest_kind == RunKind.FINAL.value:
            return None
        if newest_kind == kind.value and newest.details.get("inputs_fingerprint") == fp:
            return None
        if kind is RunKind.FINAL and newest_kind == RunKind.FINAL.value:
            restates = newest.version
    lines = settle_lines(day.inputs)
    statements = member_statements(day.inputs, lines, with_lines=kind is RunKind.FINAL)
    details = run_details(day, lines, kind, fp)
    if restates is not None:
        assert newest is not None
        details["restates_version"] = restates
        details["changes"] = statement_changes(newest.statements, statements)
        return NewVersion("restatement", statements, details)
    if kind is RunKind.PROVISIONAL:
        local = day.inputs.period_end.astimezone(tz)
        return NewVersion(f"provisional through {local:%H:%M}", statements, details)
    return NewVersion(kind.value, statements, details)


def member_statements(
    inputs: SettlementInputs, lines: Sequence[StatementLine], *, with_lines: bool
) -> tuple[Statement, ...]:
    """One statement per member of the community (in its member order), summed from ``lines``;
    with ``with_lines`` each carries its quarter-hour series in ``details["lines"]``."""
    by_member: dict[str, list[StatementLine]] = defaultdict(list)
    for line in lines:
        by_member[line.member_id].append(line)
    out = []
    for m in inputs.community.members:
        group = by_member.get(m.member_id, [])
        energy = {f: sum(getattr(ln, f) for ln in group) for f in ENERGY_FIELDS}
        money = {f: sum((getattr(ln, f) for ln in group), Decimal(0)) for f in MONEY_FIELDS}
        net = sum((ln.net_eur for ln in group), Decimal(0))
        co2 = sum((ln.co2_avoided_g for ln in group), Decimal(0))
        details: dict[str, Any] = {
            "quality": worst(*(ln.quality for ln in group)).value,
            "quarter_hours": len(group),
            "substitute_quarter_hours": substitute_counts(group),
            "own_generation_used_wh": energy["own_generation_used_wh"],
            "participation_pct": m.participation_pct,
            "money_eur": {f: str(round_eur(v)) for f, v in money.items()},
            "net_exact_eur": str(net),
        }
        if with_lines:
            details["lines"] = {
                "qh_start": [ln.qh_start.isoformat() for ln in group],
                "quality": [ln.quality.value for ln in group],
                **{f: [getattr(ln, f) for ln in group] for f in LINE_FIELDS},
            }
        out.append(
            Statement(
                member_id=m.member_id,
                consumption_wh=Decimal(energy["consumption_wh"]),
                generation_wh=Decimal(energy["generation_wh"]),
                shared_received_wh=Decimal(energy["received_wh"]),
                shared_delivered_wh=Decimal(energy["delivered_wh"]),
                grid_import_wh=Decimal(energy["residual_wh"]),
                grid_export_wh=Decimal(energy["surplus_wh"]),
                amount_eur=round_eur(net),
                co2_g=co2.quantize(_MG, rounding=ROUND_HALF_EVEN),
                details=details,
            )
        )
    return tuple(out)


def substitute_counts(lines: Iterable[StatementLine]) -> dict[str, int]:
    """How many of ``lines`` rest on substitute values, per quality (``L2``, ``L3``)."""
    counts = {IntervalQuality.L2.value: 0, IntervalQuality.L3.value: 0}
    for ln in lines:
        if ln.quality.is_substitute:
            counts[ln.quality.value] += 1
    return counts


def run_details(
    day: DayInputs, lines: Sequence[StatementLine], kind: RunKind, fp: str
) -> dict[str, Any]:
    """The run's own details: kind, how far it settled, fingerprint, quality, gaps, totals."""
    inputs = day.inputs
    by_member: dict[str, list[StatementLine]] = defaultdict(list)
    for ln in lines:
        by_member[ln.member_id].append(ln)
    substitutes = {
        member_id: counts
        for member_id, group in sorted(by_member.items())
        if any((counts := substitute_counts(group)).values())
    }
    return {
        "kind": kind.value,
        "day": day.day.isoformat(),
        "through": inputs.period_end.isoformat(),
        "quarter_hours": (inputs.period_end - inputs.period_start) // QH,
        "complete": inputs.period_end == day.day_end,
        "inputs_fingerprint": fp,
        "quality": worst(*(ln.quality for ln in lines)).value,
        "missing_members": list(day.missing_members),
        "substitute_quarter_hours": substitutes,
        "totals_wh": {f: sum(getattr(ln, f) for ln in lines) for f in ENERGY_FIELDS},
    }


def statement_changes(
    old: Iterable[Statement], new: Iterable[Statement]
) -> dict[str, dict[str, dict[str, str]]]:
    """Per member, the statement figures a restatement changed: old, new, delta (as text).

    A member without a statement in ``old`` counts from zero; members whose figures are all
    unchanged are left out."""
    before = {s.member_id: s for s in old}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for s in new:
        prev = before.get(s.member_id)
        changed: dict[str, dict[str, str]] = {}
        for f in CHANGE_FIELDS:
            a = getattr(prev, f) if prev is not None else Decimal(0)
            b = getattr(s, f)
            if a != b:
                changed[f] = {"old": str(a), "new": str(b), "delta": str(b - a)}
        if changed:
            out[s.member_id] = changed
    return out
