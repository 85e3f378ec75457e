"""A plan as a JSON document and back: what the plans table stores and every process executes.

Series are rounded to 0.1 W / 0.1 Wh (what a setpoint carries, and half the JSON of full
floats: a 60-member, 96-quarter-hour plan is ~250 kB unrounded, and the table keeps every
plan). The document also holds the round's decisions that are not part of the plan: which
(member, asset) pairs may be commanded, and the notes on devices left out or planned without
control. Reading a document tolerates keys it does not know (older plans carry
``nominal_power_w``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from vpp.dispatch.plan import (
    Alarm,
    AssetKind,
    AssetSchedule,
    MemberFlows,
    Plan,
    PlanStatus,
    Timings,
    Violation,
)


def _tenths(values: Sequence[float]) -> list[float]:
    return [round(v, 1) + 0.0 for v in values]


def _floats(values: Sequence[Any] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def plan_payload(
    plan: Plan, controllable: Collection[tuple[str, str]], notes: Sequence[str]
) -> dict[str, Any]:
    """The plan, its controllable assets and its notes as a JSON document."""
    return {
        "plan_id": plan.plan_id,
        "community_id": plan.community_id,
        "start": plan.start.isoformat(),
        "n_qh": plan.n_qh,
        "status": plan.status.value,
        "objective_eur": plan.objective_eur,
        "solver_objective_eur": plan.solver_objective_eur,
        "dual_bound_eur": plan.dual_bound_eur,
        "assets": [
            {
                "member_id": s.member_id,
                "asset_id": s.asset_id,
                "kind": s.kind.value,
                "power_w": _tenths(s.power_w),
                "soc_wh": None if s.soc_wh is None else _tenths(s.soc_wh),
                "rated_power_w": s.rated_power_w,
                "limit_w": None if s.limit_w is None else _tenths(s.limit_w),
            }
            for s in plan.assets
        ],
        "members": [
            {
                "member_id": m.member_id,
                "import_wh": _tenths(m.import_wh),
                "export_wh": _tenths(m.export_wh),
            }
            for m in plan.members
        ],
        "shared_wh": _tenths(plan.shared_wh),
        "violations": [
            {
                "constraint": v.constraint,
                "amount_wh": v.amount_wh,
                "member_id": v.member_id,
                "asset_id": v.asset_id,
                "qh": v.qh,
            }
            for v in plan.violations
        ],
        "alarms": [{"code": a.code, "message": a.message} for a in plan.alarms],
        "timings": {
            "build_s": plan.timings.build_s,
            "solve_s": plan.timings.solve_s,
            "readback_s": plan.timings.readback_s,
        },
        "controllable": sorted([m, a] for m, a in controllable),
        "notes": list(notes),
    }


def _schedule(a: dict[str, Any]) -> AssetSchedule:
    return AssetSchedule(
        member_id=a["member_id"],
        asset_id=a["asset_id"],
        kind=AssetKind(a["kind"]),
        power_w=tuple(float(v) for v in a["power_w"]),
        soc_wh=_floats(a["soc_wh"]),
        rated_power_w=a["rated_power_w"],
        limit_w=_floats(a["limit_w"]),
    )


def plan_from_payload(
    payload: dict[str, Any],
) -> tuple[Plan, frozenset[tuple[str, str]], tuple[str, ...]]:
    """The plan, its controllable assets and its notes from a stored document."""
    t = payload["timings"]
    plan = Plan(
        plan_id=payload["plan_id"],
        community_id=payload["community_id"],
        start=datetime.fromisoformat(payload["start"]).astimezone(UTC),
        n_qh=int(payload["n_qh"]),
        status=PlanStatus(payload["status"]),
        objective_eur=float(payload["objective_eur"]),
        solver_objective_eur=payload["solver_objective_eur"],
        dual_bound_eur=payload["dual_bound_eur"],
        assets=tuple(_schedule(a) for a in payload["assets"]),
        members=tuple(
            MemberFlows(
                m["member_id"],
                tuple(float(v) for v in m["import_wh"]),
                tuple(float(v) for v in m["export_wh"]),
            )
            for m in payload["members"]
        ),
        shared_wh=tuple(float(v) for v in payload["shared_wh"]),
        violations=tuple(Violation(**v) for v in payload["violations"]),
        alarms=tuple(Alarm(**a) for a in payload["alarms"]),
        timings=Timings(t["build_s"], t["solve_s"], t["readback_s"]),
    )
    controllable = frozenset((m, a) for m, a in payload.get("controllable", []))
    return plan, controllable, tuple(payload.get("notes", []))
