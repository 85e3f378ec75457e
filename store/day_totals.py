"""Each member's intervals summed per local day, so that a month is ~60 rows, not ~6,000.

A member's day and month views need, per local day and channel, the energy of the newest
interval versions and which quarter-hours are there and which hold a substitute value.
``member_day_totals`` keeps exactly that per zone: the energy (exact, like the intervals) and
two bit masks over the day's quarter-hours (bit i: the i-th quarter-hour after local
midnight; a day has up to 100). Masks rather than counts, so that "quarter-hours with any
channel" and "quarter-hours with a substitute in some channel" stay exact across channels.

**Kept by every write.** :meth:`store.intervals.IntervalRepository.record` hands each new
version (and the one it replaces) to :func:`apply_changes` in its own transaction, for every
zone in ``member_day_zones``: the energy moves by the difference, the masks get the
quarter-hour's bits. A zone is listed there once its totals are complete: :meth:`ensure_zone`
builds them from every interval in one write transaction (the intervals locked against writers
meanwhile) and lists the zone, after which every write keeps it. Readers use the totals only
for a listed zone; anything else reads the intervals.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, insert, literal_column, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnClause

from kernel.quarterhours import QH
from kernel.readings import Quality
from store.engine import read_tx, write_tx
from store.schema import member_day_totals, member_day_zones, member_intervals
from store.types import ExactDecimal, UTCDateTime

log = logging.getLogger(__name__)

#: Keys per lookup (four bind parameters each; SQLite allows 32766).
_KEYS_PER_QUERY = 1_000
#: Rows per INSERT while building a zone's totals.
_BUILD_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class DayTotal:
    """One member's channel on one local day: energy of the newest versions (Wh, exact) and
    the quarter-hours present and substitute as bit masks (bit i: i-th quarter-hour)."""

    day: date
    channel: str
    energy_wh: Decimal
    present: int
    substitute: int


@dataclass(frozen=True, slots=True)
class IntervalChange:
    """A new version of an interval: its energy and quality, and the energy of the version
    it replaces (None: the first version)."""

    member_id: str
    channel: str
    interval_start: datetime
    energy_wh: Decimal
    quality: Quality
    old_energy_wh: Decimal | None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant of the local midnight that starts ``day`` (as the API's buckets)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_slot(interval_start: datetime, tz: ZoneInfo) -> tuple[date, int]:
    """The local day of the quarter-hour starting at ``interval_start`` and its index there."""
    day = interval_start.astimezone(tz).date()
    return day, int((interval_start - local_midnight(day, tz)) / QH)


class _Slots:
    """:func:`local_slot` with the day's midnight remembered (the builder asks per row)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._midnights: dict[date, datetime] = {}

    def __call__(self, interval_start: datetime) -> tuple[date, int]:
        day = interval_start.astimezone(self._tz).date()
        midnight = self._midnights.get(day)
        if midnight is None:
            midnight = self._midnights[day] = local_midnight(day, self._tz)
        return day, (interval_start - midnight) // QH


def _hex(mask: int) -> str:
    return format(mask, "x")


@dataclass
class _Acc:
    energy_wh: Decimal
    present: int
    substitute: int


async def _zones(conn: AsyncConnection) -> list[str]:
    return [str(z) for z in (await conn.execute(select(member_day_zones.c.zone))).scalars()]


async def apply_changes(conn: AsyncConnection, changes: Sequence[IntervalChange]) -> None:
    """Move every complete zone's day totals by ``changes``, inside the caller's write
    transaction (the one that appends the versions)."""
    if not changes:
        return
    for zone in await _zones(conn):
        slot_of = _Slots(ZoneInfo(zone))
        deltas: dict[tuple[str, date, str], list[tuple[int, IntervalChange]]] = {}
        for ch in changes:
            day, slot = slot_of(ch.interval_start)
            deltas.setdefault((ch.member_id, day, ch.channel), []).append((slot, ch))
        keys = sorted(deltas)
        held: dict[tuple[str, date, str], _Acc] = {}
        t = member_day_totals.c
        for first in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[first : first + _KEYS_PER_QUERY]
            rows = await conn.execute(
                select(t.member_id, t.day, t.channel, t.energy_wh, t.present_qh, t.substitute_qh)
                .where(t.zone == zone, tuple_(t.member_id, t.day, t.channel).in_(chunk))
                .with_for_update()
            )
            for member_id, day, channel, energy, present, substitute in rows:
                held[(member_id, day, channel)] = _Acc(
                    energy, int(present, 16), int(substitute, 16)
                )
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        for key in keys:
            acc = held.get(key)
            new = acc is None
            if acc is None:
                acc = _Acc(Decimal(0), 0, 0)
            for slot, ch in deltas[key]:
                bit = 1 << slot
                acc.energy_wh += ch.energy_wh - (ch.old_energy_wh or Decimal(0))
                acc.present |= bit
                if ch.quality is Quality.GOOD:
                    acc.substitute &= ~bit
                else:
                    acc.substitute |= bit
            row = {
                "zone": zone,
                "member_id": key[0],
                "day": key[1],
                "channel": key[2],
                "energy_wh": acc.energy_wh,
                "present_qh": _hex(acc.present),
                "substitute_qh": _hex(acc.substitute),
            }
            (inserts if new else updates).append(row)
        if inserts:
            await conn.execute(insert(member_day_totals), inserts)
        if updates:
            await conn.execute(_UPDATE, [{f"b_{k}": v for k, v in row.items()} for row in updates])


#: One day total replaced (executemany over the changed rows).
_UPDATE = (
    update(member_day_totals)
    .where(
        member_day_totals.c.zone == bindparam("b_zone"),
        member_day_totals.c.member_id == bindparam("b_member_id"),
        member_day_totals.c.day == bindparam("b_day"),
        member_day_totals.c.channel == bindparam("b_channel"),
    )
    .values(
        energy_wh=bindparam("b_energy_wh"),
        present_qh=bindparam("b_present_qh"),
        substitute_qh=bindparam("b_substitute_qh"),
    )
)


class DayTotalRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        #: zones known complete in this process (a zone never becomes incomplete again)
        self._complete: set[str] = set()

    async def complete_zones(self) -> set[str]:
        async with read_tx(self._engine, "read the day-total zones") as conn:
            self._complete |= set(await _zones(conn))
        return set(self._complete)

    def is_complete(self, zone: str) -> bool:
        """Whether this process saw ``zone``'s totals complete (after :meth:`ensure_zone` or
        :meth:`complete_zones`)."""
        return zone in self._complete

    async def ensure_zone(self, zone: str, *, now: datetime) -> int:
        """Build ``zone``'s day totals from every interval unless they are complete already;
        returns how many interval versions were read (0 when nothing was to do)."""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"day totals: unknown time zone {zone!r}") from exc
        if zone in await self.complete_zones():
            return 0
        started = _time.perf_counter()
        async with write_tx(self._engine, f"build the day totals of {zone}") as conn:
            if zone in await _zones(conn):  # another process built them meanwhile
                self._complete.add(zone)
                return 0
            if conn.dialect.name == "postgresql":
                # writers wait until the zone is listed (and then keep it themselves)
                await conn.exec_driver_sql("LOCK TABLE member_intervals IN SHARE MODE")
            read = await _build(conn, ZoneInfo(zone))
            await conn.execute(
                insert(member_day_zones).values(zone=zone, complete_at=now, intervals=read)
            )
        self._complete.add(zone)
        if read:
            log.info(
                "day totals of %s built from %d interval versions in %.1f s",
                zone, read, _time.perf_counter() - started,
            )  # fmt: skip
        return read

    async def for_member(self, zone: str, member_id: str, first: date, end: date) -> list[DayTotal]:
        """The member's totals of the local days ``[first, end)`` in ``zone``, by day."""
        async with read_tx(self._engine, f"read day totals of member {member_id}") as conn:
            return await member_totals(conn, zone, member_id, first, end)


_t = member_day_totals.c
_MEMBER_TOTALS = (
    select(_t.day, _t.channel, _t.energy_wh, _t.present_qh, _t.substitute_qh)
    .where(
        _t.zone == bindparam("zone"),
        _t.member_id == bindparam("member_id"),
        _t.day >= bindparam("first"),
        _t.day < bindparam("end"),
    )
    .order_by(_t.day, _t.channel)
)


async def member_totals(
    conn: AsyncConnection, zone: str, member_id: str, first: date, end: date
) -> list[DayTotal]:
    """:meth:`DayTotalRepository.for_member` inside the caller's read transaction."""
    rows = await conn.execute(
        _MEMBER_TOTALS, {"zone": zone, "member_id": member_id, "first": first, "end": end}
    )
    return [
        DayTotal(day, channel, energy, int(present, 16), int(substitute, 16))
        for day, channel, energy, present, substitute in rows
    ]


def _converters(
    conn: AsyncConnection,
) -> tuple[Callable[[Any], datetime], Callable[[Any], Decimal]]:
    """The instant and the energy of a raw row (as the driver gives them) as the column types
    would convert them: called once per distinct instant and once per day total."""
    dialect = conn.dialect
    instant_type = member_intervals.c.interval_start.type
    energy_type = member_intervals.c.energy_wh.type
    assert isinstance(instant_type, UTCDateTime)
    assert isinstance(energy_type, ExactDecimal)
    # SQLite hands over its DATETIME text (the type parses it), PostgreSQL a datetime
    text = dialect.name == "sqlite"

    def to_instant(raw: Any) -> datetime:
        value = datetime.fromisoformat(raw) if text else raw
        instant = instant_type.process_result_value(value, dialect)
        assert instant is not None
        return instant

    def to_energy(raw: Any) -> Decimal:
        energy = energy_type.process_result_value(raw, dialect)
        assert energy is not None
        return energy

    return to_instant, to_energy


async def _insert_totals(
    conn: AsyncConnection,
    zone: str,
    acc: dict[tuple[str, date, str], _Acc],
    to_energy: Callable[[Any], Decimal],
) -> None:
    """Write the accumulated day totals of ``zone`` in batches and empty ``acc``."""
    rows = [
        {
            "zone": zone,
            "member_id": m,
            "day": d,
            "channel": c,
            "energy_wh": to_energy(a.energy_wh),
            "present_qh": _hex(a.present),
            "substitute_qh": _hex(a.substitute),
        }
        for (m, d, c), a in acc.items()
    ]
    for first in range(0, len(rows), _BUILD_BATCH):
        await conn.execute(insert(member_day_totals), rows[first : first + _BUILD_BATCH])
    acc.clear()


async def _build(conn: AsyncConnection, tz: ZoneInfo) -> int:
    """Every interval's newest version summed into day totals of ``tz``: the versions are
    read in key order, so the last row of each key is its newest.

    Tens of millions of rows go through here on an upgrade, so the instant and the energy come
    as the driver gives them: a year has only ~35,000 distinct instants (each converted once,
    by the column type's own processor) and the energies are summed as stored (scaled integers
    on SQLite, ``numeric`` on PostgreSQL) and converted once per day total."""
    mi = member_intervals.c
    raw_start: ColumnClause[Any] = literal_column(f"{member_intervals.name}.interval_start")
    raw_energy: ColumnClause[Any] = literal_column(f"{member_intervals.name}.energy_wh")
    stmt = select(mi.member_id, mi.channel, raw_start, raw_energy, mi.quality).order_by(
        mi.member_id, mi.channel, mi.interval_start, mi.version
    )
    to_instant, to_energy = _converters(conn)
    read = 0
    acc: dict[tuple[str, date, str], _Acc] = {}
    slots: dict[object, tuple[date, int]] = {}
    slot_of = _Slots(tz)
    good = Quality.GOOD.value
    pending: tuple[str, str, object, Any, str] | None = None

    def add(row: tuple[str, str, object, Any, str]) -> None:
        member_id, channel, start, energy, quality = row
        where = slots.get(start)
        if where is None:
            where = slots[start] = slot_of(to_instant(start))
        day, slot = where
        a = acc.get((member_id, day, channel))
        if a is None:
            a = acc[(member_id, day, channel)] = _Acc(energy * 0, 0, 0)
        bit = 1 << slot
        a.energy_wh += energy
        a.present |= bit
        if quality != good:
            a.substitute |= bit

    result = await conn.stream(stmt.execution_options(yield_per=20_000))
    async for partition in result.partitions():
        for row in partition:
            member_id, channel, start, energy, quality = row
            read += 1
            if pending is not None and (
                pending[2] != start or pending[1] != channel or pending[0] != member_id
            ):
                add(pending)  # a key's last row is its newest version
                if pending[0] != member_id and len(acc) >= _BUILD_BATCH:
                    await _insert_totals(conn, tz.key, acc, to_energy)  # the member before
            pending = (member_id, channel, start, energy, quality)
    if pending is not None:
        add(pending)
    await _insert_totals(conn, tz.key, acc, to_energy)
    return read


__all__ = [
    "DayTotal",
    "DayTotalRepository",
    "IntervalChange",
    "apply_changes",
    "local_slot",
    "member_totals",
]
