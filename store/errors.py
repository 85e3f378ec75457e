"""Store errors, as branches of the one Waldstadt tree (:mod:`kernel.errors`).

::

    WaldstadtError
    ├── TransientError
    │   ├── StoreUnavailable        the database cannot be reached or is locked too long
    │   └── MirrorUnavailable       the InfluxDB mirror did not accept a write
    └── PermanentError
        └── StoreError              a write the schema refuses
            └── AppendOnlyViolation an UPDATE/DELETE on an append-only table

SQLAlchemy exceptions are translated where they enter (:func:`store.engine.translate`).
"""

from __future__ import annotations

from kernel.errors import PermanentError, TransientError


class StoreUnavailable(TransientError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"database {url} unavailable: {reason}")


class StoreError(PermanentError):
    """The database refused a write (constraint, trigger, bad value)."""

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"{operation}: {reason}")


class AppendOnlyViolation(StoreError):
    """Something tried to change or remove a row of an append-only table."""


class MirrorUnavailable(TransientError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"InfluxDB mirror {url} unavailable: {reason}")
