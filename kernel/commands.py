"""Commands: what deciders ask devices to do.

Every command carries an id and an expiry (``DOMAIN.md`` F8): a duplicate id is applied once,
an expired command is never applied. Setpoints that a device must drop by itself carry
``revert_s`` (fail-safe); the runtime refreshes them before that time runs out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class CommandKind(enum.StrEnum):
    POWER_LIMIT_PCT = "power_limit_pct"  # PV curtailment, % of rating
    BATTERY_POWER_W = "battery_power_w"  # + = charge
    DIM_LEVEL_PCT = "dim_level_pct"  # luminaire level
    LOAD_POWER_W = "load_power_w"  # EV charger / storage heater power


@dataclass(frozen=True, slots=True)
class Command:
    command_id: str
    target: str
    kind: CommandKind
    value: float
    expires_at: datetime
    source: str = ""
    revert_s: int = 0
    ramp_s: float = 0.0

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class CommandStatus(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: Command
    status: CommandStatus
    detail: str = ""
