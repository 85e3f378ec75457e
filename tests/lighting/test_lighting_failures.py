"""Failure detection from node reports, one case per kind."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from lighting.errors import LightingInputError
from lighting.examples import example_segment
from lighting.failures import (
    FailureKind,
    FailureThresholds,
    NodeReport,
    check_communication,
    check_report,
)
from lighting.site import Luminaire
from lighting.sun import night_anchors

LUM = Luminaire("lum-7", "seg-0", "street-0", 7, rated_power_w=40.0, standby_power_w=0.5)
ANCHORS = night_anchors(example_segment().place, date(2026, 1, 14))
NIGHT = datetime(2026, 1, 14, 22, 0, tzinfo=UTC)
DAY = datetime(2026, 1, 14, 12, 30, tzinfo=UTC)
# expected at 100 %: 0.5 + 40 = 40.5 W; at 50 %: 0.5 + 40 × 0.53 = 21.7 W


@pytest.mark.parametrize(
    ("ts", "level_pct", "power_w", "failures", "kinds"),
    [
        (NIGHT, 100.0, 40.0, (), set()),
        (NIGHT, 50.0, 21.0, (), set()),
        (NIGHT, 0.0, 0.5, (), set()),
        (DAY, 0.0, 0.5, (), set()),
        (NIGHT, 100.0, 0.4, (), {FailureKind.LAMP_FAILURE}),
        (NIGHT, 50.0, 1.2, (), {FailureKind.LAMP_FAILURE}),
        (DAY, 100.0, 40.5, (), {FailureKind.ON_BY_DAY}),
        (DAY, 0.0, 30.0, (), {FailureKind.ON_BY_DAY, FailureKind.POWER_TOO_HIGH}),
        (NIGHT, 50.0, 35.0, (), {FailureKind.POWER_TOO_HIGH}),
        (NIGHT, 100.0, 25.0, (), {FailureKind.POWER_TOO_LOW}),
        (NIGHT, 100.0, 40.0, ("driver_overtemperature",), {FailureKind.NODE_REPORTED}),
    ],
)
def test_failure_kinds(
    ts: datetime, level_pct: float, power_w: float, failures: tuple[str, ...], kinds: set[str]
) -> None:
    report = NodeReport("lum-7", ts, level_pct, power_w, failures=failures)
    alarms = check_report(LUM, report, ANCHORS)
    assert {a.kind for a in alarms} == kinds
    for alarm in alarms:
        assert alarm.luminaire_id == "lum-7"
        assert alarm.at == ts
        assert alarm.detail


def test_on_by_day_leaves_a_margin_around_sunset() -> None:
    just_before = ANCHORS.sunset - timedelta(minutes=20)
    report = NodeReport("lum-7", just_before, 100.0, 40.5)
    assert check_report(LUM, report, ANCHORS) == ()
    strict = FailureThresholds(day_margin_s=0.0)
    assert {a.kind for a in check_report(LUM, report, ANCHORS, strict)} == {FailureKind.ON_BY_DAY}


def test_communication_lost_after_the_timeout() -> None:
    start = NIGHT - timedelta(hours=1)
    last = {"a": NIGHT - timedelta(seconds=100), "b": NIGHT - timedelta(seconds=1000)}
    alarms = check_communication(["a", "b", "c"], last, NIGHT, start)
    assert {a.luminaire_id for a in alarms} == {"b", "c"}  # c never reported in an hour
    assert all(a.kind is FailureKind.COMMUNICATION_LOST and a.at == NIGHT for a in alarms)
    assert "no report yet" in next(a for a in alarms if a.luminaire_id == "c").detail
    fresh_start = check_communication(["c"], {}, NIGHT, NIGHT - timedelta(seconds=10))
    assert fresh_start == ()
    loose = FailureThresholds(comm_timeout_s=2000.0)
    assert check_communication(["b"], last, NIGHT, start, loose) == ()
    assert alarms[0].key == ("b", "communication_lost")


def test_a_report_from_another_night_is_refused() -> None:
    morning_before = datetime(2026, 1, 14, 7, 0, tzinfo=UTC)  # belongs to the night of 13 Jan
    with pytest.raises(LightingInputError) as err:
        check_report(LUM, NodeReport("lum-7", morning_before, 100.0, 40.0), ANCHORS)
    assert err.value.field == "report 'lum-7'.ts"
