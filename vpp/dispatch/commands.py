"""Commands for the first quarter-hour of a plan (the rolling dispatch sends only those).

A command carries a deterministic id (plan id + member + asset + interval), so a duplicate is
harmless and a restart re-applies the same setpoint under the same id (faults F3, F8), and an
expiry, so a stale command is never applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from kernel.quarterhours import QH
from vpp.dispatch.plan import AssetKind, AssetSchedule, Plan


@dataclass(frozen=True)
class Command:
    """Set ``target`` of ``asset_id`` to ``value`` from ``valid_from`` until ``expires_at``.

    Targets and units: ``battery.power_w`` (positive charges), ``pv.limit_pct`` (% of rated
    power; 100 = no limit), ``ev.power_w``, ``storage_heater.power_w``,
    ``heat_pump.sg_ready_state`` (1 blocked, 2 normal, 3 recommended on).
    """

    command_id: str
    plan_id: str
    member_id: str
    asset_id: str
    target: str
    value: float
    valid_from: datetime
    expires_at: datetime


def command_id(plan_id: str, member_id: str, asset_id: str, interval_start: datetime) -> str:
    """Deterministic: the same plan, asset and interval always give the same id."""
    text = f"{plan_id}|{member_id}|{asset_id}|{interval_start.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def sg_ready_state(power_w: float, nominal_power_w: float) -> int:
    """SG-Ready state for a planned heat-pump power: 0 W → 1, ≤ nominal → 2, above → 3."""
    if power_w <= 1.0:
        return 1
    return 2 if power_w <= nominal_power_w + 1.0 else 3


def _target_value(s: AssetSchedule) -> tuple[str, float]:
    if s.kind is AssetKind.PV:
        rated = s.rated_power_w or 0.0
        limit = s.limit_w[0] if s.limit_w is not None else rated
        pct = 100.0 if rated <= 0 else min(100.0, max(0.0, 100.0 * limit / rated))
        return "pv.limit_pct", round(pct, 2)
    if s.kind is AssetKind.HEAT_PUMP:
        return "heat_pump.sg_ready_state", float(
            sg_ready_state(s.power_w[0], s.nominal_power_w or 0.0)
        )
    return f"{s.kind.value}.power_w", round(s.power_w[0], 1)


def commands_for_first_interval(
    plan: Plan, *, expiry_grace: timedelta = timedelta(0)
) -> tuple[Command, ...]:
    """One command per asset for the plan's first quarter-hour, expiring at its end + grace."""
    start = plan.start
    expires = start + QH + expiry_grace
    out = []
    for s in plan.assets:
        target, value = _target_value(s)
        out.append(
            Command(
                command_id=command_id(plan.plan_id, s.member_id, s.asset_id, start),
                plan_id=plan.plan_id,
                member_id=s.member_id,
                asset_id=s.asset_id,
                target=target,
                value=value,
                valid_from=start,
                expires_at=expires,
            )
        )
    return tuple(out)
