"""Reads of settlement runs for operators and members: versions, newest runs, run details.

Every version of a run stays (append-only, :mod:`store.settlement`); these reads say which
version is current (no newer version of the same community and period exists) and read only
the statements a caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.engine import read_tx
from store.schema import settlement_runs, settlement_statements
from store.settlement import STATEMENT_FIELDS
from vpp.settlement.runs import Statement


@dataclass(frozen=True, slots=True)
class RunRow:
    """A settlement run without its statements, with whether a newer version replaced it."""

    id: int
    community_id: str
    period_start: datetime
    period_end: datetime
    version: int
    created_at: datetime
    reason: str
    current: bool
    members: int


def _newest_version_exists() -> Exists:
    newer = settlement_runs.alias("newer")
    return (
        select(newer.c.id)
        .where(
            (newer.c.community_id == settlement_runs.c.community_id)
            & (newer.c.period_start == settlement_runs.c.period_start)
            & (newer.c.period_end == settlement_runs.c.period_end)
            & (newer.c.version > settlement_runs.c.version)
        )
        .exists()
    )


class SettlementReads:
    """The settlement-run reads of one database (``store.settlement_reads``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def member_statement_versions(
        self, member_id: str, start: datetime, end: datetime
    ) -> list[tuple[RunRow, Statement]]:
        """Every version of every run with a statement of this member, periods inside
        ``[start, end)``, by period (start, then end), then version; only this member's
        statement."""
        superseded = _newest_version_exists()
        stmt = (
            select(
                settlement_runs,
                superseded.label("superseded"),
                *[settlement_statements.c[f] for f in STATEMENT_FIELDS],
            )
            .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
            .where(
                settlement_statements.c.member_id == member_id,
                settlement_runs.c.period_start >= start,
                settlement_runs.c.period_end <= end,
            )
            .order_by(
                settlement_runs.c.period_start,
                settlement_runs.c.period_end,
                settlement_runs.c.community_id,
                settlement_runs.c.version,
            )
        )
        async with read_tx(self._engine, f"read statement versions of {member_id}") as conn:
            rows = (await conn.execute(stmt)).all()
        out = []
        for row in rows:
            m = row._mapping
            run = RunRow(
                m[settlement_runs.c.id],
                m[settlement_runs.c.community_id],
                m[settlement_runs.c.period_start],
                m[settlement_runs.c.period_end],
                m[settlement_runs.c.version],
                m[settlement_runs.c.created_at],
                m[settlement_runs.c.reason],
                not m["superseded"],
                1,
            )
            statement = Statement(**{f: m[settlement_statements.c[f]] for f in STATEMENT_FIELDS})
            out.append((run, statement))
        return out

    async def community_statements(
        self, community_id: str, start: datetime, end: datetime
    ) -> list[tuple[RunRow, Statement]]:
        """The statements of the newest run of each period of a community in ``[start, end)``."""
        stmt = (
            select(settlement_runs, *[settlement_statements.c[f] for f in STATEMENT_FIELDS])
            .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
            .where(
                settlement_runs.c.community_id == community_id,
                settlement_runs.c.period_start >= start,
                settlement_runs.c.period_end <= end,
                ~_newest_version_exists(),
            )
            .order_by(settlement_runs.c.period_start, settlement_statements.c.member_id)
        )
        async with read_tx(self._engine, f"read statements of community {community_id}") as conn:
            rows = (await conn.execute(stmt)).all()
        out = []
        for row in rows:
            m = row._mapping
            run = RunRow(
                m[settlement_runs.c.id],
                community_id,
                m[settlement_runs.c.period_start],
                m[settlement_runs.c.period_end],
                m[settlement_runs.c.version],
                m[settlement_runs.c.created_at],
                m[settlement_runs.c.reason],
                True,
                0,
            )
            out.append(
                (run, Statement(**{f: m[settlement_statements.c[f]] for f in STATEMENT_FIELDS}))
            )
        return out

    async def member_communities(self, member_id: str) -> list[str]:
        """Communities in whose settlement this member has ever had a statement."""
        stmt = (
            select(settlement_runs.c.community_id)
            .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
            .where(settlement_statements.c.member_id == member_id)
            .distinct()
            .order_by(settlement_runs.c.community_id)
        )
        async with read_tx(self._engine, f"read communities of {member_id}") as conn:
            return [str(r[0]) for r in (await conn.execute(stmt)).all()]

    async def runs_between(
        self,
        start: datetime,
        end: datetime,
        community_id: str | None = None,
        limit: int = 500,
    ) -> list[RunRow]:
        """Runs (every version) with periods overlapping ``[start, end)``, newest period first."""
        members = (
            select(func.count())
            .where(settlement_statements.c.run_id == settlement_runs.c.id)
            .scalar_subquery()
        )
        superseded = _newest_version_exists()
        stmt = select(
            settlement_runs,
            superseded.label("superseded"),
            members.label("members"),
        ).where(settlement_runs.c.period_end > start, settlement_runs.c.period_start < end)
        if community_id is not None:
            stmt = stmt.where(settlement_runs.c.community_id == community_id)
        stmt = stmt.order_by(
            settlement_runs.c.period_start.desc(),
            settlement_runs.c.community_id,
            settlement_runs.c.version.desc(),
        ).limit(limit)
        async with read_tx(self._engine, "read settlement runs") as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            RunRow(
                r._mapping["id"],
                r._mapping["community_id"],
                r._mapping["period_start"],
                r._mapping["period_end"],
                r._mapping["version"],
                r._mapping["created_at"],
                r._mapping["reason"],
                not r._mapping["superseded"],
                int(r._mapping["members"]),
            )
            for r in rows
        ]

    async def run(self, run_id: int) -> tuple[RunRow, list[Statement]] | None:
        """One run with all its statements (for operators)."""
        async with read_tx(self._engine, f"read settlement run {run_id}") as conn:
            superseded = _newest_version_exists()
            row = (
                await conn.execute(
                    select(settlement_runs, superseded.label("superseded")).where(
                        settlement_runs.c.id == run_id
                    )
                )
            ).first()
            if row is None:
                return None
            statements = (
                await conn.execute(
                    select(settlement_statements)
                    .where(settlement_statements.c.run_id == run_id)
                    .order_by(settlement_statements.c.member_id)
                )
            ).all()
        m = row._mapping
        run = RunRow(
            m["id"],
            m["community_id"],
            m["period_start"],
            m["period_end"],
            m["version"],
            m["created_at"],
            m["reason"],
            not m["superseded"],
            len(statements),
        )
        return run, [Statement(**{f: s._mapping[f] for f in STATEMENT_FIELDS}) for s in statements]


__all__ = ["RunRow", "SettlementReads"]
