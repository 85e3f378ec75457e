"""Energy-register readings and the events that break a register's growth.

A register (import, export, PV) only grows, except when it wraps at its size or the meter is
exchanged (and the exchange is recorded); any other fall is a fault
(:mod:`vpp.metering.plausibility`), never a reset. The runtime adapts
``kernel.readings.Reading`` into :class:`RegisterReading` (the quality strings are the
same); the pure core never imports the protocols package.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from kernel.errors import InputError


class ReadingQuality(enum.StrEnum):
    """As ``kernel.readings.Quality``: ``good``, ``substitute``, ``unavailable``."""

    GOOD = "good"
    SUBSTITUTE = "substitute"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """One energy-register value (whole Wh) at one aware UTC instant."""

    ts: datetime
    value_wh: int
    quality: ReadingQuality = ReadingQuality.GOOD


@dataclass(frozen=True, slots=True)
class MeterExchange:
    """A meter exchanged at ``ts``: the old register's last value, the new one's first.

    Readings at or before ``ts`` come from the old meter, readings after it from the new one.
    """

    ts: datetime
    old_final_wh: int
    new_initial_wh: int


class MeteringInputError(InputError):
    """A reading or event that cannot be turned into intervals; names meter, instant, field.

    A permanent error of the one tree (:mod:`kernel.errors`): the readings must change."""

    def __init__(
        self, reason: str, *, meter_id: str, ts: datetime | None = None, field: str | None = None
    ) -> None:
        self.meter_id = meter_id
        self.ts = ts
        where = [f"meter {meter_id!r}"]
        if ts is not None:
            where.append(f"at {ts.isoformat()}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(field or "readings", reason, f"{', '.join(where)}: {reason}")
