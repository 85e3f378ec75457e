"""A plan's setpoints for one quarter-hour, as the one command type (:mod:`kernel.commands`).

The rolling dispatch renews the plan every quarter-hour and the cycle asks, every few seconds,
for the setpoints of the quarter-hour it is in. Each command carries

* a deterministic id (plan, member, asset, quarter-hour): the same setpoint asked for in every
  cycle of a quarter-hour is written once, and a restart re-applies it under the same id
  (faults F3, F8);
* its expiry at the quarter-hour's end, so a stale setpoint is never applied;
* the site's revert time (``revert_s``: the device falls back to its own behaviour if no
  refresh comes);
* a short reason a person reads: ``plan quartier@2026-06-15T10:00Z qh 12:15: charge 3.2 kW``.

Kinds and units: PV ``power_limit_pct`` (% of rating, 100 = no limit), battery
``battery_power_w`` (+ charges), EV charger and storage heater ``load_power_w`` (power drawn).
Only the assets the round could control get one (a silent device or a PV system that may not
be curtailed gets none).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo

from kernel.commands import Command, CommandKind
from kernel.quarterhours import QH, floor_qh
from vpp.dispatch.plan import AssetKind, AssetSchedule, Plan

#: The command kind of each asset kind of a plan.
KIND = {
    AssetKind.PV: CommandKind.POWER_LIMIT_PCT,
    AssetKind.BATTERY: CommandKind.BATTERY_POWER_W,
    AssetKind.EV: CommandKind.LOAD_POWER_W,
    AssetKind.STORAGE_HEATER: CommandKind.LOAD_POWER_W,
}
#: A PV limit below this share of the rating (%) counts as curtailing.
CURTAILING_BELOW_PCT = 99.5


def command_id(plan_id: str, member_id: str, asset_id: str, interval_start: datetime) -> str:
    """Deterministic: the same plan, asset and interval always give the same id."""
    text = f"{plan_id}|{member_id}|{asset_id}|{interval_start.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def pv_limit_pct(s: AssetSchedule, k: int) -> float:
    """The PV limit of quarter-hour ``k`` in % of the rating (100: no limit), to 0.01 %."""
    rated = s.rated_power_w or 0.0
    limit = s.limit_w[k] if s.limit_w is not None else rated
    return 100.0 if rated <= 0 else round(min(100.0, max(0.0, 100.0 * limit / rated)), 2)


def setpoint(s: AssetSchedule, k: int) -> float:
    """The value to command for quarter-hour ``k``: % for PV, W (to 0.1 W) for the others."""
    return pv_limit_pct(s, k) if s.kind is AssetKind.PV else round(s.power_w[k], 1)


def curtailing(plan: Plan | None, asset_id: str, at: datetime) -> bool:
    """True if ``plan`` limits the PV system ``asset_id`` below its rating in the quarter-hour
    of ``at`` (its output then says nothing about the sky)."""
    if plan is None:
        return False
    k = (floor_qh(at) - plan.start) // QH
    for s in plan.assets:
        if s.asset_id == asset_id and s.kind is AssetKind.PV and 0 <= k < plan.n_qh:
            return pv_limit_pct(s, k) < CURTAILING_BELOW_PCT
    return False


def _what(kind: AssetKind, value: float) -> str:
    if kind is AssetKind.PV:
        return "no limit" if value >= 100.0 else f"limit to {value:g} %"
    kw = f"{abs(value) / 1000.0:.1f} kW"
    if kind is AssetKind.BATTERY:
        return "idle" if value == 0 else ("charge " if value > 0 else "discharge ") + kw
    return "off" if value == 0 else f"draw {kw}"


def setpoints(
    plan: Plan,
    at: datetime,
    controllable: Collection[tuple[str, str]],
    *,
    source: str,
    revert_s: int,
    tz: ZoneInfo,
) -> list[Command]:
    """The commands of ``plan`` for the quarter-hour of ``at`` (none outside the plan).

    ``controllable`` holds the (member id, asset id) pairs the round may command; ``source``
    names the decider; ``tz`` is the site's zone, in which the reason gives the quarter-hour.
    """
    qh = floor_qh(at)
    k = (qh - plan.start) // QH
    if not 0 <= k < plan.n_qh:
        return []
    local = qh.astimezone(tz)
    out: list[Command] = []
    for s in plan.assets:
        if (s.member_id, s.asset_id) not in controllable:
            continue
        value = setpoint(s, k)
        out.append(
            Command(
                command_id=command_id(plan.plan_id, s.member_id, s.asset_id, qh),
                target=s.asset_id,
                kind=KIND[s.kind],
                value=value,
                expires_at=qh + QH,
                source=source,
                revert_s=revert_s,
                reason=f"plan {plan.plan_id} qh {local:%H:%M}: {_what(s.kind, value)}",
            )
        )
    return out
