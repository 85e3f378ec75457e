"""Whether the lamps do what they were told: commanded level against reported level.

A luminaire *follows* when its newest report, made after the commanded ramp has had time to
finish, shows the commanded level (within ``tolerance_pct``). A report from before that
instant says nothing yet (*settling*); a luminaire without a report or without a command is
*unknown*. An operator page or a readout shows the count instead of the commanded level as if
it were the lamps' (a street can read "100 %" from the controller while its lamps are dark).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lighting.failures import NodeReport


class Following(enum.StrEnum):
    FOLLOWS = "follows"
    DIFFERS = "differs"
    SETTLING = "settling"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Commanded:
    """A luminaire's command in force: the level in %, decided at ``at``, reached over
    ``ramp_s`` seconds."""

    level_pct: float
    at: datetime
    ramp_s: float = 0.0


def following(
    commanded: Commanded | None,
    report: NodeReport | None,
    *,
    tolerance_pct: float = 1.0,
    grace_s: float = 5.0,
) -> Following:
    """One luminaire: does its report show its commanded level (after ramp + ``grace_s``)?"""
    if commanded is None or report is None:
        return Following.UNKNOWN
    settled_at = commanded.at + timedelta(seconds=commanded.ramp_s + grace_s)
    if report.ts < settled_at:
        return Following.SETTLING
    if abs(report.level_pct - commanded.level_pct) <= tolerance_pct:
        return Following.FOLLOWS
    return Following.DIFFERS


def count_following(
    luminaire_ids: list[str] | tuple[str, ...],
    commanded: Mapping[str, Commanded],
    reports: Mapping[str, NodeReport],
) -> dict[Following, int]:
    """How many of ``luminaire_ids`` follow, differ, settle or are unknown."""
    out = dict.fromkeys(Following, 0)
    for lid in luminaire_ids:
        out[following(commanded.get(lid), reports.get(lid))] += 1
    return out


__all__ = ["Commanded", "Following", "count_following", "following"]
