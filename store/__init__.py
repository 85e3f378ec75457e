"""Persistence behind one repository layer: SQLite by default, PostgreSQL when scaled.

Open a :class:`Store` with a database URL and use its repositories (``store.readings``,
``store.intervals``, ``store.day_totals``, ``store.plans``, ``store.commands``,
``store.settlement``, ``store.alarms``, ``store.audit``, ``store.users``, ``store.outbox``).
Schema changes are Alembic migrations (:mod:`store.migrate`).
"""

from store.audit import AuditEntry, ChainReport
from store.commands import Command
from store.errors import AppendOnlyViolation, MirrorUnavailable, StoreError, StoreUnavailable
from store.intervals import Interval
from store.mirror import MirrorConfig
from store.settlement import Statement
from store.store import DEFAULT_URL, Store, StoreSettings
from store.writer import ReadingWriter

__all__ = [
    "DEFAULT_URL",
    "AppendOnlyViolation",
    "AuditEntry",
    "ChainReport",
    "Command",
    "Interval",
    "MirrorConfig",
    "MirrorUnavailable",
    "ReadingWriter",
    "Statement",
    "Store",
    "StoreError",
    "StoreSettings",
    "StoreUnavailable",
]
