"""Errors of the settlement core: every one names the member, the interval and the field.

::

    kernel.errors.InputError
    └── SettlementInputError              bad input; nothing already settled is changed
        └── KeyConfigError                a sharing key or participation that cannot hold

Both are permanent errors of the one tree (retrying will not help).
"""

from __future__ import annotations

from datetime import datetime

from kernel.errors import InputError


class SettlementInputError(InputError):
    """Input that cannot be settled. Carries what is known: member, interval, field, reason."""

    def __init__(
        self,
        reason: str,
        *,
        member_id: str | None = None,
        interval: datetime | None = None,
        field: str | None = None,
    ) -> None:
        self.member_id = member_id
        self.interval = interval
        where = []
        if member_id is not None:
            where.append(f"member {member_id!r}")
        if interval is not None:
            where.append(f"interval {interval.isoformat()}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(field or "settlement", reason, f"{prefix}: {reason}" if prefix else reason)


class KeyConfigError(SettlementInputError):
    """A sharing key, a participation factor or a membership that breaks the rules."""
