"""The :class:`Store`: one database behind one object, opened with ``async with``.

::

    async with Store("sqlite+aiosqlite:///waldstadt.db") as store:
        await store.readings.write(readings, now=clock.now())
        won = (await store.plans.insert("c1", start, plan, created_by="node-a", now=t)).won

Opening applies the migrations, so a fresh file or an empty PostgreSQL database is ready to
use; processes that start together migrate one at a time. With ``migrate=False`` (migrations
run as a separate deployment step) opening refuses a database that is not at the head
revision, instead of failing later on a missing column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.alarms import AlarmRepository
from store.audit import AuditRepository
from store.balances import BalanceReads
from store.commands import CommandRepository
from store.day_totals import DayTotalRepository
from store.engine import DRIVER_ERRORS, make_engine, translate, translate_driver
from store.errors import StoreError
from store.intervals import IntervalRepository
from store.lighting_config import LightingConfigRepository
from store.migrate import current_revision_engine, head_revision, upgrade_engine
from store.mirror import InfluxMirror, MirrorConfig
from store.outbox import DEFAULT_CAPACITY, Outbox
from store.plans import PlanRepository
from store.quarantine import QuarantineRepository
from store.readings import ReadingRepository
from store.settlement import SettlementRepository
from store.settlement_reads import SettlementReads
from store.users import UserRepository

DEFAULT_URL = "sqlite+aiosqlite:///waldstadt.db"


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``raw_retention``: how long raw readings are kept (intervals are kept for good).
    ``mirror_readings``: queue new readings for the InfluxDB mirror.
    ``outbox_capacity``: bound of that queue, in lines (oldest dropped beyond it)."""

    raw_retention: timedelta = timedelta(days=90)
    mirror_readings: bool = False
    outbox_capacity: int = DEFAULT_CAPACITY


class Store:
    """Holds the engine and hands out the repositories. Not re-entrant."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        settings: StoreSettings | None = None,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.settings = settings or StoreSettings()
        self._migrate = migrate
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Store used outside 'async with'")
        return self._engine

    async def __aenter__(self) -> Store:
        if self._engine is not None:
            raise RuntimeError("Store is not re-entrant")
        engine = make_engine(self.url)
        try:
            try:
                if self._migrate:
                    await upgrade_engine(engine)
                else:
                    current = await current_revision_engine(engine)
                    if current != head_revision():
                        raise StoreError(
                            "open store",
                            f"database schema is at revision {current or '(none)'}, this code "
                            f"needs {head_revision()}: run store.migrate.upgrade first",
                        )
            except (SQLAlchemyError, OSError) as exc:
                raise translate(engine, "migrate the schema", exc) from exc
            outbox = Outbox(engine, self.settings.outbox_capacity)
            await outbox.init()
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self.outbox = outbox
        self.readings = ReadingRepository(engine, outbox if self.settings.mirror_readings else None)
        self.quarantine = QuarantineRepository(engine)
        self.intervals = IntervalRepository(engine)
        self.day_totals = DayTotalRepository(engine)
        self.plans = PlanRepository(engine)
        self.commands = CommandRepository(engine)
        self.settlement = SettlementRepository(engine)
        self.settlement_reads = SettlementReads(engine)
        self.balances = BalanceReads(engine)
        self.alarms = AlarmRepository(engine)
        self.audit = AuditRepository(engine)
        self.users = UserRepository(engine)
        self.lighting_config = LightingConfigRepository(engine)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def ping(self) -> None:
        """A real query (``SELECT 1``) on a fresh connection: raises
        :class:`~store.errors.StoreUnavailable` when the database does not answer."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except DRIVER_ERRORS as exc:
            raise translate_driver(self.engine, "ping the database", exc) from exc

    def mirror(self, config: MirrorConfig) -> InfluxMirror:
        """A drainer of this store's outbox into the server in ``config``."""
        return InfluxMirror(self.outbox, config)

    async def purge_expired_readings(self, now: datetime) -> int:
        """Apply the retention: delete raw readings older than ``now - raw_retention``, and
        quarantined readings received before then; returns the raw readings removed."""
        cutoff = now - self.settings.raw_retention
        await self.quarantine.purge_older_than(cutoff)
        return await self.readings.purge_older_than(cutoff)
