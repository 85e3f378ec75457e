"""The site file's value types: identifiers, prices, local clock times, UTC instants."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

from kernel.quarterhours import is_qh_boundary

#: ``valid_from`` of a first key given without one ("since ever"): the quarter-hour epoch.
SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)

_ID = r"^[a-z0-9][a-z0-9_-]*$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _invalid(reason: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``reason`` (no "Value error, " prefix)."""
    return PydanticCustomError("site", "{reason}", {"reason": reason})


def _clock_text(value: object) -> object:
    """Accept only quoted ``"HH:MM"`` (or a ``time``): an unquoted 18:00 is YAML's 1080."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise _invalid(f'a clock time must be quoted text "HH:MM", got {value!r}')
    if not _CLOCK.match(value):
        raise _invalid(f'{value!r} is not "HH:MM"')
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


#: A local wall-clock time, written ``"HH:MM"``.
LocalTime = Annotated[time, BeforeValidator(_clock_text)]
Id = Annotated[str, Field(pattern=_ID)]
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _on_qh(value: datetime | None, what: str) -> datetime | None:
    if value is not None and not is_qh_boundary(value):
        raise _invalid(f"{what} {value.isoformat()} is not on a quarter-hour boundary")
    return value


def value_utc(value: datetime) -> datetime:
    """An aware instant in UTC (the settlement core's convention)."""
    return value.astimezone(UTC)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


__all__ = [
    "SINCE_EVER",
    "Id",
    "LocalTime",
    "Price",
    "value_utc",
]
