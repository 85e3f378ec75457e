"""Settlement runs: versioned and append-only.

A run settles one community for one period ``[period_start, period_end)``. Its statements
(one per member) are written with it, in one transaction. A restatement is a new run with the
next version; earlier versions stay, so any figure ever shown to a member can be reproduced.
Energy is in Wh and money in EUR, both exact decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.dialect import serialize_on
from store.engine import read_tx, write_tx
from store.errors import StoreError
from store.schema import settlement_runs, settlement_statements
from vpp.settlement.runs import Statement

_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SettlementRun:
    """One stored version of a community's period and its members' statements
    (:class:`vpp.settlement.runs.Statement`, the settlement core's type)."""

    id: int
    community_id: str
    period_start: datetime
    period_end: datetime
    version: int
    created_at: datetime
    reason: str
    details: dict[str, Any]
    statements: tuple[Statement, ...]


STATEMENT_FIELDS = (
    "member_id",
    "consumption_wh",
    "generation_wh",
    "shared_received_wh",
    "shared_delivered_wh",
    "grid_import_wh",
    "grid_export_wh",
    "amount_eur",
    "co2_g",
    "details",
)


async def _load(conn: AsyncConnection, run_row: object) -> SettlementRun:
    r = run_row._mapping  # type: ignore[attr-defined]
    rows = (
        await conn.execute(
            select(settlement_statements)
            .where(settlement_statements.c.run_id == r["id"])
            .order_by(settlement_statements.c.member_id)
        )
    ).all()
    statements = tuple(Statement(**{f: row._mapping[f] for f in STATEMENT_FIELDS}) for row in rows)
    return SettlementRun(
        r["id"],
        r["community_id"],
        r["period_start"],
        r["period_end"],
        r["version"],
        r["created_at"],
        r["reason"],
        r["details"],
        statements,
    )


class SettlementRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(
        self,
        community_id: str,
        period_start: datetime,
        period_end: datetime,
        statements: Sequence[Statement],
        *,
        reason: str,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> SettlementRun:
        """Store a new version of the settlement of this period (1 if it is the first).

        Two concurrent appends for the same period both succeed, with consecutive versions:
        they queue on a lock for that period (and, should that ever be bypassed, the loser of
        the unique (community, period, version) race retries on the next version).
        """
        members = [s.member_id for s in statements]
        if len(set(members)) != len(members):
            raise StoreError(
                f"settle {community_id}", f"duplicate member in statements: {sorted(members)}"
            )
        last_error: StoreError | None = None
        for _ in range(_ATTEMPTS):
            try:
                return await self._append_once(
                    community_id, period_start, period_end, statements, reason, now, details or {}
                )
            except StoreError as exc:
                if "unique" not in exc.reason.lower() and "duplicate" not in exc.reason.lower():
                    raise
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _append_once(
        self,
        community_id: str,
        period_start: datetime,
        period_end: datetime,
        statements: Sequence[Statement],
        reason: str,
        now: datetime,
        details: dict[str, Any],
    ) -> SettlementRun:
        period = f"{period_start.isoformat()}..{period_end.isoformat()}"
        async with write_tx(self._engine, f"settle {community_id} {period}") as conn:
            await serialize_on(conn, f"settlement:{community_id}:{period}")
            latest = (
                await conn.execute(
                    select(func.max(settlement_runs.c.version)).where(
                        settlement_runs.c.community_id == community_id,
                        settlement_runs.c.period_start == period_start,
                        settlement_runs.c.period_end == period_end,
                    )
                )
            ).scalar_one_or_none()
            run_id = (
                await conn.execute(
                    insert(settlement_runs).returning(settlement_runs.c.id),
                    {
                        "community_id": community_id,
                        "period_start": period_start,
                        "period_end": period_end,
                        "version": (latest or 0) + 1,
                        "created_at": now,
                        "reason": reason,
                        "details": details,
                    },
                )
            ).scalar_one()
            if statements:
                await conn.execute(
                    insert(settlement_statements),
                    [
                        {"run_id": run_id, **{f: getattr(s, f) for f in STATEMENT_FIELDS}}
                        for s in statements
                    ],
                )
            row = (
                await conn.execute(select(settlement_runs).where(settlement_runs.c.id == run_id))
            ).one()
            return await _load(conn, row)

    async def versions(
        self, community_id: str, period_start: datetime, period_end: datetime
    ) -> list[SettlementRun]:
        """Every version of one period's settlement, oldest first."""
        async with read_tx(self._engine, f"read settlement of {community_id}") as conn:
            rows = (
                await conn.execute(
                    select(settlement_runs)
                    .where(
                        settlement_runs.c.community_id == community_id,
                        settlement_runs.c.period_start == period_start,
                        settlement_runs.c.period_end == period_end,
                    )
                    .order_by(settlement_runs.c.version)
                )
            ).all()
            return [await _load(conn, row) for row in rows]

    async def latest(
        self, community_id: str, period_start: datetime, period_end: datetime
    ) -> SettlementRun | None:
        """The newest version of one period's settlement (what is valid now)."""
        runs = await self.versions(community_id, period_start, period_end)
        return runs[-1] if runs else None

    async def member_statements(
        self, member_id: str, start: datetime, end: datetime
    ) -> list[tuple[SettlementRun, Statement]]:
        """A member's statements from the newest run of each period inside ``[start, end)``.

        The run comes back without the other members' statements: a member sees only their
        own figures.
        """
        newer = settlement_runs.alias("newer")
        stmt = (
            select(settlement_runs, *[settlement_statements.c[f] for f in STATEMENT_FIELDS])
            .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
            .where(
                settlement_statements.c.member_id == member_id,
                settlement_runs.c.period_start >= start,
                settlement_runs.c.period_end <= end,
                ~select(newer.c.id)
                .where(
                    (newer.c.community_id == settlement_runs.c.community_id)
                    & (newer.c.period_start == settlement_runs.c.period_start)
                    & (newer.c.period_end == settlement_runs.c.period_end)
                    & (newer.c.version > settlement_runs.c.version)
                )
                .exists(),
            )
            .order_by(settlement_runs.c.period_start, settlement_runs.c.community_id)
        )
        async with read_tx(self._engine, f"read statements of member {member_id}") as conn:
            rows = (await conn.execute(stmt)).all()
        out: list[tuple[SettlementRun, Statement]] = []
        for row in rows:
            m = row._mapping
            statement = Statement(**{f: m[settlement_statements.c[f]] for f in STATEMENT_FIELDS})
            run = SettlementRun(
                m[settlement_runs.c.id],
                m[settlement_runs.c.community_id],
                m[settlement_runs.c.period_start],
                m[settlement_runs.c.period_end],
                m[settlement_runs.c.version],
                m[settlement_runs.c.created_at],
                m[settlement_runs.c.reason],
                m[settlement_runs.c.details],
                (statement,),
            )
            out.append((run, statement))
        return out


__all__ = ["STATEMENT_FIELDS", "SettlementRepository", "SettlementRun", "Statement"]
