"""What the lighting sends to nodes: their retained schedules, and their level commands.

:func:`light_schedule` turns the core's :class:`~lighting.schedule.NodeSchedule` (resolved
steps of the coming nights at the design class, floor applied) into the retained
:class:`~protocols.streetlight.LightSchedule`; every luminaire of a segment gets the same one.
:class:`LuminaireTargets` gives the command writer each luminaire of the site as a target
that takes ``dim_level_pct`` commands (:class:`~protocols.streetlight.NodeDimmer`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime

from lighting.config import LightingSite
from lighting.schedule import NodeSchedule, node_schedule
from lighting.site import LightingIndex
from lighting.sun import night_of, zone
from protocols.streetlight import LightSchedule, NodeDimmer, ScheduleStep, StreetlightController
from scheduler.lighting.config import LightingServiceConfig

log = logging.getLogger(__name__)

#: Schedules handed to the bus before waiting for it to take them (see :func:`push_schedules`).
PUSH_SLICE = 64


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


async def push_schedules(
    controller: StreetlightController,
    site: LightingSite,
    config: LightingServiceConfig,
    now: datetime,
    pace: Callable[[], Awaitable[None]],
) -> int:
    """Send every node its retained schedule for the coming nights; returns how many.
    ``pace`` is awaited after every :data:`PUSH_SLICE` schedules, so that 10,000 of them do
    not stand in the broker queue in front of a presence command."""
    sent = 0
    index = site.index
    for sid, segment in index.segments.items():
        schedule = node_schedule(
            segment,
            site.programs,
            night_of(now, zone(segment.timezone)),
            config.schedule_nights,
            config.fallback_level_pct,
            config.controller_timeout_s,
        )
        message = light_schedule(schedule, now)
        for lum in index.by_segment[sid]:
            await controller.push_schedule(lum.luminaire_id, message)
            sent += 1
            if sent % PUSH_SLICE == 0:
                await pace()
    log.info("pushed retained schedules to %d nodes", sent)
    return sent


class LuminaireTargets(Mapping[str, object]):
    """The site's luminaires as command targets, by luminaire id (follows a changed site)."""

    def __init__(self, controller: StreetlightController, index: LightingIndex) -> None:
        self._controller = controller
        self.index = index

    def __getitem__(self, key: str) -> object:
        if key not in self.index.luminaires:
            raise KeyError(key)
        return NodeDimmer(self._controller, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index.luminaires)

    def __len__(self) -> int:
        return len(self.index.luminaires)


__all__ = ["PUSH_SLICE", "LuminaireTargets", "light_schedule", "push_schedules"]
