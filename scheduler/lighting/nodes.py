"""What the service sends to nodes, in the node protocol's payloads.

:func:`light_schedule` turns the core's :class:`~lighting.schedule.NodeSchedule` (resolved
steps of the coming nights at the design class, floor applied) into the retained
:class:`~protocols.streetlight.LightSchedule`; every luminaire of a segment gets the same one.
"""

from __future__ import annotations

from datetime import datetime

from lighting.schedule import NodeSchedule
from protocols.streetlight import LightSchedule, ScheduleStep


def light_schedule(schedule: NodeSchedule, issued_at: datetime) -> LightSchedule:
    """The retained schedule message of one segment's nodes (instants in UTC)."""
    return LightSchedule(
        issued_at=issued_at,
        steps=[
            ScheduleStep(at=step.at, level_pct=step.level_pct, ramp_s=step.ramp_s)
            for step in schedule.steps
        ],
        fallback_level_pct=schedule.fallback_level_pct,
        controller_timeout_s=schedule.controller_timeout_s,
        valid_until=schedule.valid_until,
    )
