"""Read queries the views need and the repositories do not offer (yet).

They use the store's tables and its read transaction, and only read. Candidates to move into
``store/`` once a second user appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Integer,
    Select,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.balances import IntervalSums, IntervalValue, SettledPeriod
from kernel.readings import Quality
from store import Store
from store.alarms import AlarmEvent
from store.commands import StoredCommand
from store.commands import _stored as _stored_command
from store.engine import read_tx
from store.plans import StoredPlan
from store.plans import _plan as _stored_plan
from store.schema import (
    alarm_events,
    commands,
    member_intervals,
    plans,
    settlement_runs,
    settlement_statements,
)
from store.settlement import _STATEMENT_FIELDS, Statement

#: A statement's columns without its details (which a balance never needs).
_FIGURE_FIELDS = tuple(f for f in _STATEMENT_FIELDS if f != "details")


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


async def latest_intervals(
    store: Store, member_id: str, start: datetime, end: datetime
) -> list[IntervalValue]:
    """A member's intervals in ``[start, end)``, newest version of each, by time then channel.

    Same answer as ``store.intervals.for_member`` without ``history``, but the newest version is
    picked here rather than by an anti-join in SQL: restatements are rare, so one range scan
    over the member's index plus a dictionary is several times faster for a month (~6,000
    rows) on both backends, and only the four columns a balance needs are read.
    """
    stmt = select(
        member_intervals.c.channel,
        member_intervals.c.interval_start,
        member_intervals.c.energy_wh,
        member_intervals.c.quality,
        member_intervals.c.version,
    ).where(
        member_intervals.c.member_id == member_id,
        member_intervals.c.interval_start >= start,
        member_intervals.c.interval_start < end,
    )
    async with read_tx(store.engine, f"read intervals of member {member_id}") as conn:
        rows = (await conn.execute(stmt)).all()
    newest: dict[tuple[datetime, str], tuple[int, IntervalValue]] = {}
    for channel, ts, energy_wh, quality, version in rows:
        key = (ts, channel)
        held = newest.get(key)
        if held is None or version > held[0]:
            newest[key] = (version, IntervalValue(channel, ts, energy_wh, Quality(quality)))
    return [newest[key][1] for key in sorted(newest)]


def _bucket_of(ts: ColumnElement[datetime], edges: Sequence[datetime], lo: int, hi: int) -> Any:
    """The index of the bucket holding ``ts`` among buckets ``lo..hi-1`` (``edges[i]`` ends
    bucket ``i``), as a CASE nested like a binary search: ~5 comparisons per row for a
    month of days instead of ~15 for a flat CASE."""
    if hi - lo <= 1:
        return literal(lo, Integer)
    mid = (lo + hi) // 2
    return case(
        (ts < edges[mid - 1], _bucket_of(ts, edges, lo, mid)),
        else_=_bucket_of(ts, edges, mid, hi),
    )


async def interval_sums(
    store: Store, member_id: str, bounds: Sequence[tuple[datetime, datetime]]
) -> list[IntervalSums]:
    """A member's intervals summed per bucket in the database (newest version of each).

    ``bounds`` are contiguous buckets (:func:`api.balances.bucket_bounds` of a day or month
    view). The same figures as :func:`latest_intervals` fed to ``bucketise``, but the rows stay
    in the database: a month is ~6,000 intervals and ~60 result rows, read from the covering
    index ``ix_member_intervals_member_start_cover`` alone. Restatements are rare: the keys
    with a version above 1 are found first (usually none), and a row counts unless such a key
    has a newer version. Energy sums are exact on both backends (scaled integers on SQLite,
    ``numeric`` on PostgreSQL).
    """
    if not bounds:
        return []
    mi = member_intervals
    in_range = (
        (mi.c.member_id == member_id)
        & (mi.c.interval_start >= bounds[0][0])
        & (mi.c.interval_start < bounds[-1][1])
    )
    restated = (
        select(mi.c.channel, mi.c.interval_start, func.max(mi.c.version).label("top"))
        .where(in_range, mi.c.version > 1)
        .group_by(mi.c.channel, mi.c.interval_start)
        .cte("restated")
    )
    edges = [end for _, end in bounds[:-1]]
    newest = (
        select(
            _bucket_of(mi.c.interval_start, edges, 0, len(bounds)).label("bucket"),
            mi.c.channel,
            mi.c.interval_start,
            mi.c.energy_wh,
            mi.c.quality,
        )
        .select_from(
            mi.outerjoin(
                restated,
                (restated.c.channel == mi.c.channel)
                & (restated.c.interval_start == mi.c.interval_start),
            )
        )
        .where(in_range, restated.c.top.is_(None) | (mi.c.version == restated.c.top))
        .cte("newest")
    )
    per_qh = (
        select(
            newest.c.bucket,
            func.max(case((newest.c.quality != Quality.GOOD.value, 1), else_=0)).label("sub"),
        )
        .group_by(newest.c.bucket, newest.c.interval_start)
        .subquery("per_qh")
    )
    no_count = cast(null(), Integer)
    stmt = union_all(
        select(
            newest.c.bucket,
            newest.c.channel,
            func.sum(newest.c.energy_wh).label("wh"),
            no_count.label("qhs"),
            no_count.label("subs"),
        ).group_by(newest.c.bucket, newest.c.channel),
        select(
            per_qh.c.bucket,
            null(),
            null(),
            func.count().label("qhs"),
            func.sum(per_qh.c.sub).label("subs"),
        ).group_by(per_qh.c.bucket),
    )
    async with read_tx(store.engine, f"sum intervals of member {member_id}") as conn:
        rows = (await conn.execute(stmt)).all()
    energy: dict[int, dict[str, Decimal]] = {}
    counts: dict[int, tuple[int, int]] = {}
    for i, channel, wh, qhs, subs in rows:
        if channel is not None:
            energy.setdefault(int(i), {})[channel] = wh
        else:
            counts[int(i)] = (int(qhs), int(subs))
    return [
        IntervalSums(i, energy.get(i, {}), qhs, subs) for i, (qhs, subs) in sorted(counts.items())
    ]


def _settled_periods_statement() -> Select[Any]:
    """Built once: the member's statement of the newest run of each period in a range
    (bind parameters ``member_id``, ``start``, ``end``)."""
    runs = settlement_runs.c
    newest = (
        select(
            runs.community_id,
            runs.period_start,
            runs.period_end,
            func.max(runs.version).label("version"),
        )
        .where(runs.period_start >= bindparam("start"), runs.period_end <= bindparam("end"))
        .group_by(runs.period_start, runs.period_end, runs.community_id)
        .subquery("newest")
    )
    run = settlement_runs.alias("run")
    return (
        select(
            run.c.period_start,
            run.c.period_end,
            *[settlement_statements.c[f] for f in _FIGURE_FIELDS],
        )
        .select_from(newest)
        .join(
            run,
            (run.c.community_id == newest.c.community_id)
            & (run.c.period_start == newest.c.period_start)
            & (run.c.period_end == newest.c.period_end)
            & (run.c.version == newest.c.version),
        )
        .join(
            settlement_statements,
            (settlement_statements.c.run_id == run.c.id)
            & (settlement_statements.c.member_id == bindparam("member_id")),
        )
        .order_by(run.c.period_start, run.c.community_id)
    )


_SETTLED_PERIODS = _settled_periods_statement()


async def settled_periods_in(
    conn: AsyncConnection, member_id: str, start: datetime, end: datetime
) -> list[SettledPeriod]:
    """:func:`settled_periods` inside the caller's read transaction."""
    rows = await conn.execute(
        _SETTLED_PERIODS, {"member_id": member_id, "start": start, "end": end}
    )
    return [SettledPeriod(row[0], row[1], Statement(*row[2:])) for row in rows]


async def settled_periods(
    store: Store, member_id: str, start: datetime, end: datetime
) -> list[SettledPeriod]:
    """The member's statement in the newest run of each period inside ``[start, end)``:
    the same as ``store.settlement.member_statements`` for a balance, read lean.

    A day has about a hundred versions (provisional settlement after every quarter-hour),
    each with a statement per member, so the newest version of each period is found among
    the runs of the range (``ix_settlement_runs_period``) and then the member's one statement
    of each (``run_id, member_id`` is unique); no details are read or decoded."""
    async with read_tx(store.engine, f"read settled periods of member {member_id}") as conn:
        return await settled_periods_in(conn, member_id, start, end)


_THROUGH = (
    select(
        settlement_runs.c.details["through"].as_string().label("through"),
        *[settlement_statements.c[f] for f in _FIGURE_FIELDS],
    )
    .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
    .where(
        settlement_runs.c.period_start >= bindparam("start"),
        settlement_runs.c.period_end <= bindparam("end"),
        settlement_statements.c.member_id == bindparam("member_id"),
    )
    .order_by(settlement_runs.c.community_id, settlement_runs.c.version)
)


async def statements_through(
    store: Store, member_id: str, start: datetime, end: datetime
) -> list[tuple[str | None, Statement]]:
    """Every version of the runs with periods inside ``[start, end)`` that have a statement of
    the member: how far the run settled (its ``details["through"]``, ISO 8601) and the member's
    statement, by community then version. Only the member's rows are read (a day has ~100
    versions, each with a statement per member)."""
    async with read_tx(store.engine, f"read the settlement versions of {member_id}") as conn:
        rows = await conn.execute(_THROUGH, {"member_id": member_id, "start": start, "end": end})
        return [
            (row[0], Statement(**dict(zip(_FIGURE_FIELDS, row[1:], strict=True)))) for row in rows
        ]


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


async def member_statement_versions(
    store: Store, member_id: str, start: datetime, end: datetime
) -> list[tuple[RunRow, Statement]]:
    """Every version of every run with a statement of this member, periods inside
    ``[start, end)``, by period (start, then end), then version; only this member's
    statement."""
    superseded = _newest_version_exists()
    stmt = (
        select(
            settlement_runs,
            superseded.label("superseded"),
            *[settlement_statements.c[f] for f in _STATEMENT_FIELDS],
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
    async with read_tx(store.engine, f"read statement versions of {member_id}") as conn:
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
        statement = Statement(**{f: m[settlement_statements.c[f]] for f in _STATEMENT_FIELDS})
        out.append((run, statement))
    return out


async def community_statements(
    store: Store, community_id: str, start: datetime, end: datetime
) -> list[tuple[RunRow, Statement]]:
    """The statements of the newest run of each period of a community inside ``[start, end)``."""
    stmt = (
        select(settlement_runs, *[settlement_statements.c[f] for f in _STATEMENT_FIELDS])
        .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
        .where(
            settlement_runs.c.community_id == community_id,
            settlement_runs.c.period_start >= start,
            settlement_runs.c.period_end <= end,
            ~_newest_version_exists(),
        )
        .order_by(settlement_runs.c.period_start, settlement_statements.c.member_id)
    )
    async with read_tx(store.engine, f"read statements of community {community_id}") as conn:
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
            (run, Statement(**{f: m[settlement_statements.c[f]] for f in _STATEMENT_FIELDS}))
        )
    return out


async def member_communities(store: Store, member_id: str) -> list[str]:
    """Communities in whose settlement this member has ever had a statement."""
    stmt = (
        select(settlement_runs.c.community_id)
        .join(settlement_statements, settlement_statements.c.run_id == settlement_runs.c.id)
        .where(settlement_statements.c.member_id == member_id)
        .distinct()
        .order_by(settlement_runs.c.community_id)
    )
    async with read_tx(store.engine, f"read communities of {member_id}") as conn:
        return [str(r[0]) for r in (await conn.execute(stmt)).all()]


async def settlement_runs_between(
    store: Store,
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
    async with read_tx(store.engine, "read settlement runs") as conn:
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


async def settlement_run(store: Store, run_id: int) -> tuple[RunRow, list[Statement]] | None:
    """One run with all its statements (for operators)."""
    async with read_tx(store.engine, f"read settlement run {run_id}") as conn:
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
    return run, [Statement(**{f: s._mapping[f] for f in _STATEMENT_FIELDS}) for s in statements]


async def plan_communities(store: Store) -> list[str]:
    async with read_tx(store.engine, "read plan communities") as conn:
        rows = (
            await conn.execute(
                select(plans.c.community_id).distinct().order_by(plans.c.community_id)
            )
        ).all()
    return [str(r[0]) for r in rows]


async def plan_by_id(store: Store, plan_id: int) -> StoredPlan | None:
    async with read_tx(store.engine, f"read plan {plan_id}") as conn:
        row = (await conn.execute(select(plans).where(plans.c.id == plan_id))).first()
    return None if row is None else _stored_plan(row)


async def commands_between(
    store: Store,
    start: datetime,
    end: datetime,
    *,
    target: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[StoredCommand]:
    """Commands issued in ``[start, end)``, newest first."""
    stmt = select(commands).where(commands.c.issued_at >= start, commands.c.issued_at < end)
    if target is not None:
        stmt = stmt.where(commands.c.target == target)
    if status is not None:
        stmt = stmt.where(commands.c.status == status)
    stmt = stmt.order_by(commands.c.issued_at.desc(), commands.c.id.desc()).limit(limit)
    async with read_tx(store.engine, "read commands") as conn:
        rows = (await conn.execute(stmt)).all()
    return [_stored_command(r) for r in rows]


async def alarm_events_between(
    store: Store, start: datetime, end: datetime, limit: int = 1000
) -> list[AlarmEvent]:
    """Raise and clear events in ``[start, end)``, newest first."""
    async with read_tx(store.engine, "read alarm events") as conn:
        rows = (
            await conn.execute(
                select(alarm_events)
                .where(alarm_events.c.ts >= start, alarm_events.c.ts < end)
                .order_by(alarm_events.c.id.desc())
                .limit(limit)
            )
        ).all()
    return [AlarmEvent(**{k: r._mapping[k] for k in AlarmEvent.__dataclass_fields__}) for r in rows]
