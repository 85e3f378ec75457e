"""Column types that mean the same on SQLite and PostgreSQL.

- :class:`UTCDateTime`: aware UTC instants. PostgreSQL stores ``timestamptz``; SQLite has no
  time zone type, so the value is stored as naive UTC text in SQLAlchemy's fixed-width format
  (which sorts and compares correctly) and comes back aware. Naive datetimes are refused, not
  guessed.
- :class:`ExactDecimal`: energy and money. PostgreSQL stores ``numeric(p, s)``; SQLite would
  silently store ``numeric`` as a binary float, so there the value is a scaled integer
  (``Decimal("1.234")`` Wh at scale 3 → ``1234``). Sums in SQL stay exact on both, because
  ``SUM`` over the column comes back through the same type. Floats are refused: a settlement
  must never pass through binary floating point.
- :data:`JSONType`: ``jsonb`` on PostgreSQL, JSON text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC instant on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store only aware (UTC) instants")
        as_utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return as_utc.replace(tzinfo=None)
        return as_utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal with a fixed number of places; exact on SQLite and PostgreSQL alike.

    ``scale`` is the number of decimal places kept (3 for Wh → mWh resolution, 6 for EUR).
    Values with more places are refused rather than rounded, so that no caller loses money
    without noticing.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 3) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def _check(self, value: object) -> Decimal:
        if isinstance(value, (bool, float)):
            raise TypeError(
                f"exact decimal column got {type(value).__name__} {value!r}: "
                "pass Decimal or int, never float"
            )
        if isinstance(value, int):
            value = Decimal(value)
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"exact decimal column got {value!r}: pass a finite Decimal or int")
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent < -self.scale and value != value.quantize(Decimal(1).scaleb(-self.scale)):
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return value

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = self._check(value)
        if dialect.name == "sqlite":
            return int(exact.scaleb(self.scale))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        quantum = Decimal(1).scaleb(-self.scale)
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale).quantize(quantum)
        return Decimal(value).quantize(quantum)


#: JSON documents: ``jsonb`` on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
