"""Versioned, append-only settlement runs as values.

A :class:`SettlementRun` is the result of settling one community over one period: a version
number, a fingerprint of every input it was computed from, and its statement lines. Runs are
never changed. Late meter data (a substitute value replaced by a real one, say) produce a *new*
run through :func:`restate`, which carries the version after the previous one and the
difference line by line, field by field. A :class:`SettlementLedger` is the append-only sequence
of runs of a community; the persistence layer stores it as it is.

Bad input raises before a run exists, so an error can never leave a half-made run behind, and
the runs already in a ledger stay exactly as they were.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from vpp.metering.quality import IntervalQuality
from vpp.settlement.errors import SettlementInputError
from vpp.settlement.model import SettlementInputs
from vpp.settlement.settle import settle_lines
from vpp.settlement.statement import ENERGY_FIELDS, MONEY_FIELDS, StatementLine

#: Fields compared between versions, in the order a restatement lists them.
DIFF_FIELDS = ("quality", *ENERGY_FIELDS, *MONEY_FIELDS, "co2_avoided_g")


def fingerprint(inputs: SettlementInputs) -> str:
    """SHA-256 of the inputs' canonical text (frozen dataclasses have a deterministic repr)."""
    return hashlib.sha256(repr(inputs).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SettlementRun:
    """One settled version of one community and period."""

    community_id: str
    version: int
    period_start: datetime
    period_end: datetime
    inputs_fingerprint: str
    lines: tuple[StatementLine, ...]


@dataclass(frozen=True, slots=True)
class LineChange:
    """One field of one member's quarter-hour that a restatement changed."""

    member_id: str
    qh_start: datetime
    field: str
    old: int | Decimal | IntervalQuality | None
    new: int | Decimal | IntervalQuality | None

    @property
    def delta(self) -> int | Decimal | None:
        """``new − old`` for numbers (a line that appears or disappears counts as 0)."""
        old, new = self.old, self.new
        if isinstance(old, IntervalQuality) or isinstance(new, IntervalQuality):
            return None
        return (new if new is not None else 0) - (old if old is not None else 0)


@dataclass(frozen=True, slots=True)
class Restatement:
    """A new run and what it changed against the run it restates."""

    run: SettlementRun
    previous_version: int
    changes: tuple[LineChange, ...]


def settle(inputs: SettlementInputs, version: int = 1) -> SettlementRun:
    """Settle ``inputs`` as a run with the given version (1 for a first settlement)."""
    lines = settle_lines(inputs)
    return SettlementRun(
        community_id=inputs.community.community_id,
        version=version,
        period_start=inputs.period_start,
        period_end=inputs.period_end,
        inputs_fingerprint=fingerprint(inputs),
        lines=lines,
    )


def restate(previous: SettlementRun, new_inputs: SettlementInputs) -> Restatement:
    """Settle ``new_inputs`` again as the next version of ``previous``; show the difference."""
    same_scope = (
        new_inputs.community.community_id == previous.community_id
        and new_inputs.period_start == previous.period_start
        and new_inputs.period_end == previous.period_end
    )
    if not same_scope:
        raise SettlementInputError(
            f"a restatement of run v{previous.version} must cover community "
            f"{previous.community_id!r} from {previous.period_start.isoformat()} "
            f"to {previous.period_end.isoformat()}",
            field="period",
        )
    run = settle(new_inputs, version=previous.version + 1)
    return Restatement(run, previous.version, diff_lines(previous.lines, run.lines))


def diff_lines(
    old: tuple[StatementLine, ...], new: tuple[StatementLine, ...]
) -> tuple[LineChange, ...]:
    """Field-by-field changes between two sets of lines, by quarter-hour then member id."""
    old_by = {(ln.qh_start, ln.member_id): ln for ln in old}
    new_by = {(ln.qh_start, ln.member_id): ln for ln in new}
    changes: list[LineChange] = []
    for qh, member_id in sorted(old_by.keys() | new_by.keys()):
        a, b = old_by.get((qh, member_id)), new_by.get((qh, member_id))
        for name in DIFF_FIELDS:
            va = getattr(a, name) if a is not None else None
            vb = getattr(b, name) if b is not None else None
            if va != vb:
                changes.append(LineChange(member_id, qh, name, va, vb))
    return tuple(changes)


@dataclass(frozen=True, slots=True)
class SettlementLedger:
    """All runs of one community, append-only: ``record`` returns a new, longer ledger.

    Versions count per period: the first settlement of a period is v1, each restatement of
    that period the next number.
    """

    community_id: str
    runs: tuple[SettlementRun, ...] = ()

    def latest(self, period_start: datetime, period_end: datetime) -> SettlementRun | None:
        """The newest run of exactly this period, if any."""
        for run in reversed(self.runs):
            if run.period_start == period_start and run.period_end == period_end:
                return run
        return None

    def record(self, inputs: SettlementInputs) -> tuple[SettlementLedger, Restatement | None]:
        """Settle ``inputs``: a first run (v1), or a restatement when the period was settled.

        Inputs identical to the latest run's (same fingerprint) add nothing. On error the
        ledger (``self``) is untouched and the exception propagates.
        """
        if inputs.community.community_id != self.community_id:
            raise SettlementInputError(
                f"ledger of {self.community_id!r} cannot take community "
                f"{inputs.community.community_id!r}",
                field="community_id",
            )
        previous = self.latest(inputs.period_start, inputs.period_end)
        if previous is None:
            run = settle(inputs, version=1)
            return SettlementLedger(self.community_id, (*self.runs, run)), None
        if previous.inputs_fingerprint == fingerprint(inputs):
            return self, None
        restatement = restate(previous, inputs)
        return SettlementLedger(self.community_id, (*self.runs, restatement.run)), restatement
