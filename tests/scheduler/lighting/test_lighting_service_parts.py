"""The lighting's plain parts: the daily push instant, command ids, the configuration's
checks, the alarm book, and the retained schedule message."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from kernel.errors import ConfigError
from lighting.examples import PROGRAMS
from lighting.failures import Alarm, FailureKind
from lighting.schedule import node_schedule
from protocols.streetlight import LightSchedule, wire_command_id
from scheduler.lighting import (
    AlarmBook,
    AlarmChange,
    Change,
    LightingServiceConfig,
    light_schedule,
    next_local,
)
from scheduler.lighting.alarms import stored_alarms
from store import Store
from tests.scheduler.lighting.harness import street_segment

T = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 12:30 Berlin in winter is 11:30 UTC; before it today, after it tomorrow
        (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), datetime(2026, 11, 25, 11, 30, tzinfo=UTC)),
        (datetime(2026, 11, 25, 11, 30, tzinfo=UTC), datetime(2026, 11, 26, 11, 30, tzinfo=UTC)),
        # spring forward on 29 March 2026: 12:30 CEST is 10:30 UTC
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 29, 10, 30, tzinfo=UTC)),
        # fall back on 25 October 2026: 12:30 CET is 11:30 UTC
        (datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 11, 30, tzinfo=UTC)),
    ],
)
def test_next_local_push_instant(now: datetime, expected: datetime) -> None:
    assert next_local(now, time(12, 30), "Europe/Berlin") == expected


def test_command_ids_fit_the_protocol_and_stay_stable() -> None:
    short = "tick-l1-20261125T200000-70.0"
    assert wire_command_id(short) == short
    long = "presence-" + "x" * 80 + "-20261125T200000000000"
    assert len(wire_command_id(long)) <= 64
    assert wire_command_id(long) == wire_command_id(long)
    assert wire_command_id(long) != wire_command_id(long + "1")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"command_expiry_s": 0.0}, "lighting_service.command_expiry_s"),
        ({"command_expiry_s": 900.0}, "lighting_service.command_expiry_s"),  # = node timeout
        ({"renew_within_s": 300.0}, "lighting_service.renew_within_s"),  # = command life
        ({"timezone": "Mars/Olympus"}, "lighting_service.timezone"),
    ],
)
def test_bad_service_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises((ConfigError, ValueError)) as err:
        LightingServiceConfig(**kwargs)  # type: ignore[arg-type]
    assert field in str(err.value)


async def test_alarm_book_raises_once_and_clears_once() -> None:
    seen: list[AlarmChange] = []

    async def hook(change: AlarmChange) -> None:
        seen.append(change)

    book = AlarmBook(hook)
    lamp = Alarm("l1", FailureKind.LAMP_FAILURE, T, "0 W at level 70 %")
    own = Alarm("l1", FailureKind.NODE_REPORTED, T, "lamp_failure")
    heat = Alarm("l1", FailureKind.NODE_REPORTED, T, "driver_overtemperature")
    kinds = [FailureKind.LAMP_FAILURE, FailureKind.NODE_REPORTED]
    await book.update("l1", [lamp, own, heat], kinds, T)
    await book.update("l1", [lamp, own, heat], kinds, T + timedelta(minutes=1))
    assert [c.change for c in seen] == [Change.RAISED] * 3
    await book.update("l1", [own], kinds, T + timedelta(minutes=2))
    assert [(c.change, c.alarm.detail) for c in seen[3:]] == [
        (Change.CLEARED, lamp.detail),
        (Change.CLEARED, heat.detail),
    ]
    # a check of other kinds leaves these alone
    await book.update("l1", [], [FailureKind.COMMUNICATION_LOST], T + timedelta(minutes=3))
    assert list(book.active) == [("l1", "node_reported", "lamp_failure")]
    assert book.for_luminaire("l2") == []


def test_retained_schedule_message_carries_the_nights_fallback_and_timeout() -> None:
    seg = street_segment()
    sched = node_schedule(seg, PROGRAMS, date(2026, 11, 25), 2, 90.0, 600.0)
    msg = light_schedule(sched, T)
    again = LightSchedule.model_validate_json(msg.model_dump_json())
    assert again == msg
    assert [s.level_pct for s in msg.steps] == [100.0, 70.0, 30.0, 70.0, 0.0] * 2
    assert (msg.fallback_level_pct, msg.controller_timeout_s) == (90.0, 600.0)
    assert msg.valid_until == sched.valid_until
    assert msg.step_at(msg.steps[2].at) == msg.steps[2]


async def test_stored_alarms_keep_one_alarm_while_its_figures_change(store: Store) -> None:
    hook = stored_alarms(store)
    high = Alarm("l1", FailureKind.POWER_TOO_HIGH, T, "80 W at level 70 % (expected 31 W)")
    higher = Alarm("l1", FailureKind.POWER_TOO_HIGH, T, "95 W at level 70 % (expected 31 W)")
    await hook(AlarmChange(Change.RAISED, high, T))
    await hook(AlarmChange(Change.RAISED, higher, T + timedelta(minutes=1)))
    active = await store.alarms.active()
    assert [a.alarm_key for a in active] == ["lighting:l1:power_too_high"]
    await hook(AlarmChange(Change.CLEARED, higher, T + timedelta(minutes=2)))
    assert await store.alarms.active() == []
