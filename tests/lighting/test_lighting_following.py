"""Commanded against reported levels: follows, differs, settling, unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lighting.failures import NodeReport
from lighting.following import Commanded, Following, count_following, following

T = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


def report(level: float, after_s: float) -> NodeReport:
    return NodeReport("l1", T + timedelta(seconds=after_s), level, 20.0)


@pytest.mark.parametrize(
    ("level", "after_s", "expected"),
    [
        (70.0, 60.0, Following.FOLLOWS),  # ramp 30 s + grace 5 s are over
        (70.6, 60.0, Following.FOLLOWS),  # within the tolerance
        (0.0, 60.0, Following.DIFFERS),  # dark although 70 % was commanded
        (40.0, 20.0, Following.SETTLING),  # still ramping
        (40.0, 34.9, Following.SETTLING),  # ramp over, grace not yet
    ],
)
def test_one_luminaire(level: float, after_s: float, expected: Following) -> None:
    assert following(Commanded(70.0, T, ramp_s=30.0), report(level, after_s)) is expected


def test_without_command_or_report_nothing_is_known() -> None:
    assert following(None, report(70.0, 60.0)) is Following.UNKNOWN
    assert following(Commanded(70.0, T), None) is Following.UNKNOWN


def test_a_street_is_counted() -> None:
    commanded = {lid: Commanded(50.0, T) for lid in ("a", "b", "c")}
    reports = {
        "a": NodeReport("a", T + timedelta(minutes=1), 50.0, 20.0),
        "b": NodeReport("b", T + timedelta(minutes=1), 0.0, 0.4),
    }
    counts = count_following(["a", "b", "c", "d"], commanded, reports)
    assert counts == {
        Following.FOLLOWS: 1,
        Following.DIFFERS: 1,
        Following.SETTLING: 0,
        Following.UNKNOWN: 2,
    }
