"""The result of one dispatch round: a frozen plan, free of solver objects.

Powers are mean W over a quarter-hour; energies per quarter-hour are Wh. Battery power is
positive when charging, negative when discharging; PV ``power_w`` is the planned output limit
(forecast minus curtailment); EV and storage heater ``power_w`` is consumption.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class PlanStatus(enum.Enum):
    """How the plan came about, from best to worst."""

    OPTIMAL = "optimal"
    #: optimal for the soft problem, but some soft constraint had to give (see ``violations``)
    FEASIBLE_WITH_VIOLATIONS = "feasible_with_violations"
    #: the decomposition reached its time limit with a feasible plan; ``dual_bound_eur``
    #: certifies how far from the optimum it can be at most
    AT_LIMIT = "feasible_at_limit"
    #: the solver failed or timed out: the last valid plan, shifted to this horizon
    FALLBACK_LAST_PLAN = "fallback_last_plan"
    #: no usable last plan: batteries idle, no curtailment, EVs at their minimum
    FALLBACK_SAFE_DEFAULT = "fallback_safe_default"

    @property
    def is_fallback(self) -> bool:
        return self in (PlanStatus.FALLBACK_LAST_PLAN, PlanStatus.FALLBACK_SAFE_DEFAULT)


class AssetKind(enum.Enum):
    PV = "pv"
    BATTERY = "battery"
    EV = "ev"
    STORAGE_HEATER = "storage_heater"


@dataclass(frozen=True)
class Alarm:
    """Something an operator must see: ``code`` is stable (for filters), ``message`` says why."""

    code: str
    message: str


@dataclass(frozen=True)
class Violation:
    """A soft constraint that had to give.

    ``constraint`` is one of ``feeder_import``, ``feeder_export`` (per quarter-hour ``qh``),
    ``energy_need`` (per asset, for the horizon), ``terminal_soc`` (per battery). ``amount_wh``
    is the energy by which it was missed.
    """

    constraint: str
    amount_wh: float
    member_id: str | None = None
    asset_id: str | None = None
    qh: int | None = None


@dataclass(frozen=True)
class Timings:
    """Seconds spent modelling, in the solver and reading back; ``None`` where not measured.

    ``solve_s`` comes from the solver's own clock; the others need the caller's timer because
    the pure core does not read clocks.
    """

    build_s: float | None
    solve_s: float | None
    readback_s: float | None


@dataclass(frozen=True)
class AssetSchedule:
    """Setpoints of one asset for every quarter-hour of the horizon.

    For PV, ``limit_w`` is what to command: the planned output where the plan curtails, the
    rated power (no limit) elsewhere.
    """

    member_id: str
    asset_id: str
    kind: AssetKind
    power_w: tuple[float, ...]
    soc_wh: tuple[float, ...] | None = None
    rated_power_w: float | None = None
    limit_w: tuple[float, ...] | None = None


@dataclass(frozen=True)
class MemberFlows:
    """A member's planned exchange at its grid connection point, Wh per quarter-hour."""

    member_id: str
    import_wh: tuple[float, ...]
    export_wh: tuple[float, ...]


@dataclass(frozen=True)
class Plan:
    """The dispatch plan of one community for one horizon.

    ``objective_eur`` is the community's cost of *this* plan (import − export revenue − value of
    sharing + battery wear + curtailment + penalties), evaluated from the plan itself, so it is
    comparable between optimal and fallback plans. ``solver_objective_eur`` is what the solver
    reported (``None`` for fallbacks); ``dual_bound_eur`` a certified lower bound when known.
    ``shared_wh`` is the community's shared energy per quarter-hour; who received it is the
    settlement's job.
    """

    plan_id: str
    community_id: str
    start: datetime
    n_qh: int
    status: PlanStatus
    objective_eur: float
    solver_objective_eur: float | None
    dual_bound_eur: float | None
    assets: tuple[AssetSchedule, ...]
    members: tuple[MemberFlows, ...]
    shared_wh: tuple[float, ...]
    violations: tuple[Violation, ...]
    alarms: tuple[Alarm, ...]
    timings: Timings

    def asset(self, member_id: str, asset_id: str) -> AssetSchedule:
        """The schedule of one asset; ``KeyError`` names it if the plan has none."""
        for a in self.assets:
            if a.member_id == member_id and a.asset_id == asset_id:
                return a
        raise KeyError(f"plan {self.plan_id} has no asset {asset_id!r} of member {member_id!r}")

    def member(self, member_id: str) -> MemberFlows:
        for m in self.members:
            if m.member_id == member_id:
                return m
        raise KeyError(f"plan {self.plan_id} has no member {member_id!r}")


def plan_id_for(community_id: str, start: datetime) -> str:
    """One plan per community and interval (fault F10): the id is that pair."""
    return f"{community_id}@{start.strftime('%Y-%m-%dT%H:%MZ')}"
