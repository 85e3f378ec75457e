"""Quarter-hour energy per member, kept for good, restated by new versions.

An interval is ``(member_id, channel, interval_start)``; its rows are append-only. Writing the
same energy and quality again is a no-op (idempotent); writing a different value appends a
new version with ``restated = true``. Readers see the newest version unless they ask for the
history. Every write also keeps the per-day totals of :mod:`store.day_totals` in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.readings import Quality, utc
from store.day_totals import IntervalChange, apply_changes
from store.engine import read_tx, write_tx
from store.schema import member_intervals

#: Keys per lookup query (three bind parameters each; SQLite allows 32766).
_KEYS_PER_QUERY = 1_000


@dataclass(frozen=True, slots=True)
class Interval:
    """Energy of one member and channel in the quarter-hour starting at ``interval_start``."""

    member_id: str
    channel: str
    interval_start: datetime
    energy_wh: Decimal
    quality: Quality = Quality.GOOD

    def __post_init__(self) -> None:
        start = utc(self.interval_start)
        if start.minute % 15 or start.second or start.microsecond:
            raise ValueError(
                f"interval {self.member_id}/{self.channel}: start {start.isoformat()} "
                "is not on a quarter-hour boundary"
            )
        if not isinstance(self.energy_wh, Decimal):
            raise TypeError(
                f"interval {self.member_id}/{self.channel}: energy_wh must be Decimal, "
                f"got {type(self.energy_wh).__name__}"
            )


@dataclass(frozen=True, slots=True)
class StoredInterval:
    interval: Interval
    version: int
    restated: bool
    recorded_at: datetime


def _stored(row: object) -> StoredInterval:
    r = row._mapping  # type: ignore[attr-defined]
    interval = Interval(
        r["member_id"], r["channel"], r["interval_start"], r["energy_wh"], Quality(r["quality"])
    )
    return StoredInterval(interval, r["version"], r["restated"], r["recorded_at"])


_KEY_COLS = (
    member_intervals.c.member_id,
    member_intervals.c.channel,
    member_intervals.c.interval_start,
)

Key = tuple[str, str, datetime]


async def _newest(conn: AsyncConnection, keys: set[Key]) -> dict[Key, StoredInterval]:
    """The newest stored version of each key, read in chunks of :data:`_KEYS_PER_QUERY`."""
    out: dict[Key, StoredInterval] = {}
    ordered = sorted(keys)
    for first in range(0, len(ordered), _KEYS_PER_QUERY):
        chunk = ordered[first : first + _KEYS_PER_QUERY]
        newest = (
            select(*_KEY_COLS, func.max(member_intervals.c.version).label("version"))
            .where(tuple_(*_KEY_COLS).in_(chunk))
            .group_by(*_KEY_COLS)
            .subquery()
        )
        rows = await conn.execute(
            select(member_intervals).join(
                newest,
                (member_intervals.c.member_id == newest.c.member_id)
                & (member_intervals.c.channel == newest.c.channel)
                & (member_intervals.c.interval_start == newest.c.interval_start)
                & (member_intervals.c.version == newest.c.version),
            )
        )
        for row in rows:
            stored = _stored(row)
            i = stored.interval
            out[(i.member_id, i.channel, i.interval_start)] = stored
    return out


def _new_versions(
    intervals: Sequence[Interval], latest: dict[Key, StoredInterval], now: datetime
) -> tuple[list[dict[str, object]], list[IntervalChange]]:
    """The rows to append (an interval whose energy or quality differs from the newest stored
    version, or that is new) and the day totals' changes they make."""
    new_rows: list[dict[str, object]] = []
    changes: list[IntervalChange] = []
    for interval in intervals:
        key = (interval.member_id, interval.channel, utc(interval.interval_start))
        previous = latest.get(key)
        if previous is not None and (
            previous.interval.energy_wh == interval.energy_wh
            and previous.interval.quality == interval.quality
        ):
            continue
        version = 1 if previous is None else previous.version + 1
        new_rows.append(
            {
                "member_id": interval.member_id,
                "channel": interval.channel,
                "interval_start": interval.interval_start,
                "energy_wh": interval.energy_wh,
                "quality": interval.quality.value,
                "version": version,
                "restated": version > 1,
                "recorded_at": now,
            }
        )
        changes.append(
            IntervalChange(
                interval.member_id,
                interval.channel,
                key[2],
                interval.energy_wh,
                interval.quality,
                None if previous is None else previous.interval.energy_wh,
            )
        )
        latest[key] = StoredInterval(interval, version, version > 1, now)
    return new_rows, changes


class IntervalRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, intervals: Sequence[Interval], *, now: datetime) -> int:
        """Store intervals in one transaction; returns how many versions were appended.

        An interval equal to its newest stored version (energy and quality) appends nothing;
        a changed one appends the next version (a restatement), and the day totals follow in
        the same transaction."""
        if not intervals:
            return 0
        keys = {(i.member_id, i.channel, utc(i.interval_start)) for i in intervals}
        async with write_tx(self._engine, f"record {len(intervals)} intervals") as conn:
            latest = await _newest(conn, keys)
            new_rows, changes = _new_versions(intervals, latest, now)
            if new_rows:
                await conn.execute(insert(member_intervals), new_rows)
                await apply_changes(conn, changes)
        return len(new_rows)

    async def for_member(
        self,
        member_id: str,
        start: datetime,
        end: datetime,
        channel: str | None = None,
        *,
        history: bool = False,
    ) -> list[StoredInterval]:
        """A member's intervals with ``start <= interval_start < end``, oldest first.

        Only the newest version of each interval, unless ``history`` is set.
        """
        cond = (
            (member_intervals.c.member_id == member_id)
            & (member_intervals.c.interval_start >= start)
            & (member_intervals.c.interval_start < end)
        )
        if channel is not None:
            cond = cond & (member_intervals.c.channel == channel)
        stmt = select(member_intervals).where(cond)
        if not history:
            newer = member_intervals.alias("newer")
            stmt = stmt.where(
                ~select(newer.c.id)
                .where(
                    (newer.c.member_id == member_intervals.c.member_id)
                    & (newer.c.channel == member_intervals.c.channel)
                    & (newer.c.interval_start == member_intervals.c.interval_start)
                    & (newer.c.version > member_intervals.c.version)
                )
                .exists()
            )
        stmt = stmt.order_by(
            member_intervals.c.interval_start,
            member_intervals.c.channel,
            member_intervals.c.version,
        )
        async with read_tx(self._engine, f"read intervals of member {member_id}") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_stored(row) for row in rows]
