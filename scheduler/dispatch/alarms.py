"""The dispatch's alarms of one community, raised or cleared after every round.

Two alarm keys per community: ``dispatch:<community>:fallback`` while the plan in force is a
fallback (critical for the safe default, a warning for the last plan shifted forward), and
``dispatch:<community>:violations`` while the plan misses soft limits (an EV's need, a feeder
limit, a battery's end state), naming the first ten.
"""

from __future__ import annotations

from datetime import datetime

from store.alarms import AlarmRepository
from vpp.dispatch import Plan, PlanStatus


async def report_alarms(
    alarms: AlarmRepository, source: str, community_id: str, plan: Plan, now: datetime
) -> None:
    """Raise or clear the community's two dispatch alarms for ``plan``."""
    await _fallback(alarms, source, community_id, plan, now)
    await _violations(alarms, source, community_id, plan, now)


async def _fallback(
    alarms: AlarmRepository, source: str, community_id: str, plan: Plan, now: datetime
) -> None:
    key = f"dispatch:{community_id}:fallback"
    if not plan.status.is_fallback:
        await alarms.clear_alarm(
            key, message=f"plan {plan.plan_id} solved ({plan.status.value})", now=now
        )
        return
    causes = "; ".join(a.message for a in plan.alarms) or plan.status.value
    await alarms.raise_alarm(
        key,
        source=source,
        kind="dispatch_fallback",
        severity="critical" if plan.status is PlanStatus.FALLBACK_SAFE_DEFAULT else "warning",
        message=f"plan {plan.plan_id} is a fallback ({plan.status.value}): {causes}",
        now=now,
        details={"plan_id": plan.plan_id, "alarms": [a.message for a in plan.alarms]},
    )


async def _violations(
    alarms: AlarmRepository, source: str, community_id: str, plan: Plan, now: datetime
) -> None:
    key = f"dispatch:{community_id}:violations"
    if not plan.violations:
        await alarms.clear_alarm(key, message=f"plan {plan.plan_id} keeps every limit", now=now)
        return
    missed = ", ".join(
        f"{v.constraint} {v.amount_wh:.0f} Wh"
        + (f" ({v.member_id}/{v.asset_id})" if v.asset_id else "")
        + (f" at qh {v.qh}" if v.qh is not None else "")
        for v in plan.violations[:10]
    )
    await alarms.raise_alarm(
        key,
        source=source,
        kind="dispatch_violations",
        severity="warning",
        message=f"plan {plan.plan_id}: {len(plan.violations)} soft limit(s) missed: {missed}",
        now=now,
        details={
            "plan_id": plan.plan_id,
            "violations": [
                {"constraint": v.constraint, "amount_wh": v.amount_wh, "asset": v.asset_id}
                for v in plan.violations
            ],
        },
    )
