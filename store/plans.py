"""Dispatch plans: append-only, exactly one per (community, interval_start) (F10).

Two processes that both computed a plan for the same quarter-hour race on the unique
constraint; ``INSERT … ON CONFLICT DO NOTHING`` makes the loser's insert a no-op, and it reads
back the winner's plan. Neither sees an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.dialect import insert_ignoring
from store.engine import read_tx, write_tx
from store.schema import plans


@dataclass(frozen=True, slots=True)
class StoredPlan:
    id: int
    community_id: str
    interval_start: datetime
    created_at: datetime
    created_by: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlanInsert:
    """``won``: this call stored the plan; otherwise ``plan`` is the one stored before."""

    won: bool
    plan: StoredPlan


def stored_plan(row: object) -> StoredPlan:
    """A row of the plans table as a :class:`StoredPlan`."""
    r = row._mapping  # type: ignore[attr-defined]
    return StoredPlan(
        r["id"],
        r["community_id"],
        r["interval_start"],
        r["created_at"],
        r["created_by"],
        r["payload"],
    )


async def _get(conn: AsyncConnection, community_id: str, interval_start: datetime) -> object:
    return (
        await conn.execute(
            select(plans).where(
                plans.c.community_id == community_id, plans.c.interval_start == interval_start
            )
        )
    ).first()


class PlanRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(
        self,
        community_id: str,
        interval_start: datetime,
        payload: dict[str, Any],
        *,
        created_by: str,
        now: datetime,
    ) -> PlanInsert:
        """Store the plan unless one exists for that interval; say who won."""
        what = f"insert plan {community_id}@{interval_start.isoformat()}"
        async with write_tx(self._engine, what) as conn:
            stmt = insert_ignoring(conn, plans, "community_id", "interval_start").returning(
                plans.c.id
            )
            inserted = (
                await conn.execute(
                    stmt,
                    {
                        "community_id": community_id,
                        "interval_start": interval_start,
                        "created_at": now,
                        "created_by": created_by,
                        "payload": payload,
                    },
                )
            ).first()
            row = await _get(conn, community_id, interval_start)
        if row is None:
            raise RuntimeError(f"{what}: neither inserted nor found")
        return PlanInsert(won=inserted is not None, plan=stored_plan(row))

    async def get(self, community_id: str, interval_start: datetime) -> StoredPlan | None:
        async with read_tx(self._engine, f"read plan {community_id}") as conn:
            row = await _get(conn, community_id, interval_start)
        return None if row is None else stored_plan(row)

    async def latest(self, community_id: str, at_or_before: datetime) -> StoredPlan | None:
        """The newest plan that starts at or before an instant (the "last valid plan", F9)."""
        async with read_tx(self._engine, f"read latest plan {community_id}") as conn:
            row = (
                await conn.execute(
                    select(plans)
                    .where(
                        plans.c.community_id == community_id,
                        plans.c.interval_start <= at_or_before,
                    )
                    .order_by(plans.c.interval_start.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else stored_plan(row)

    async def between(self, community_id: str, start: datetime, end: datetime) -> list[StoredPlan]:
        """Plans with ``start <= interval_start < end``, oldest first (e.g. the next 24 h)."""
        async with read_tx(self._engine, f"read plans {community_id}") as conn:
            rows = (
                await conn.execute(
                    select(plans)
                    .where(
                        plans.c.community_id == community_id,
                        plans.c.interval_start >= start,
                        plans.c.interval_start < end,
                    )
                    .order_by(plans.c.interval_start)
                )
            ).all()
        return [stored_plan(row) for row in rows]

    async def communities(self) -> list[str]:
        """Every community that has a stored plan, by id."""
        async with read_tx(self._engine, "read plan communities") as conn:
            rows = (
                await conn.execute(
                    select(plans.c.community_id).distinct().order_by(plans.c.community_id)
                )
            ).all()
        return [str(r[0]) for r in rows]

    async def by_id(self, plan_id: int) -> StoredPlan | None:
        async with read_tx(self._engine, f"read plan {plan_id}") as conn:
            row = (await conn.execute(select(plans).where(plans.c.id == plan_id))).first()
        return None if row is None else stored_plan(row)
