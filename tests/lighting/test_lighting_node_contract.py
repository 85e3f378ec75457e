"""Contract: a node schedule from the core is a valid retained ``LightSchedule`` message, and a
node running it alone picks the same step as the core."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from lighting.examples import PROGRAMS, example_segment
from lighting.program import step_at
from lighting.schedule import node_schedule

streetlight = pytest.importorskip("protocols.streetlight")


def test_node_schedule_fits_the_retained_schedule_message() -> None:
    sched = node_schedule(example_segment(), PROGRAMS, date(2026, 3, 27), count=3)
    issued = datetime(2026, 3, 27, 11, 0, tzinfo=UTC)
    message = streetlight.LightSchedule(
        issued_at=issued,
        steps=[
            streetlight.ScheduleStep(at=s.at, level_pct=s.level_pct, ramp_s=s.ramp_s)
            for s in sched.steps
        ],
        fallback_level_pct=sched.fallback_level_pct,
        controller_timeout_s=sched.controller_timeout_s,
        valid_until=sched.valid_until,
    )
    decoded = streetlight.LightSchedule.model_validate_json(streetlight.dump(message))
    assert len(decoded.steps) == len(sched.steps)
    # every 20 minutes over the three nights (incl. the spring-forward one), node == core
    t = sched.nights[0].steps[0].at
    while t < sched.valid_until:
        night = next(n for n in sched.nights if n.start <= t < n.end)
        core = step_at(night, t)
        node = decoded.step_at(t)
        if core is None:  # before the night's first step: the node still holds last night's
            assert node is None or node.level_pct == 0.0
        else:
            assert node is not None
            assert node.level_pct == core.level_pct
            assert node.at == core.at
        t += timedelta(minutes=20)
    assert decoded.step_at(sched.valid_until) is None  # fallback time
