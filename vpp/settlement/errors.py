"""Errors of the settlement core: every one names the member, the interval and the field.

::

    SettlementInputError (ValueError)     bad input; nothing already settled is changed
    └── KeyConfigError                    a sharing key or participation that cannot hold

The runtime maps these onto its own tree (a permanent error: retrying will not help).
"""

from __future__ import annotations

from datetime import datetime


class SettlementInputError(ValueError):
    """Input that cannot be settled. Carries what is known: member, interval, field, reason."""

    def __init__(
        self,
        reason: str,
        *,
        member_id: str | None = None,
        interval: datetime | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.member_id = member_id
        self.interval = interval
        self.field = field
        where = []
        if member_id is not None:
            where.append(f"member {member_id!r}")
        if interval is not None:
            where.append(f"interval {interval.isoformat()}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class KeyConfigError(SettlementInputError):
    """A sharing key, a participation factor or a membership that breaks the rules."""
