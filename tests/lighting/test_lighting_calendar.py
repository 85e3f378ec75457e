"""Calendar rules in priority order, public holidays of the state, the default program."""

from __future__ import annotations

from datetime import date

import pytest

from lighting.calendar import (
    Calendar,
    DateRangeRule,
    EventRule,
    HolidayRule,
    NthWeekdayRule,
    WeekdayRule,
    choose_program,
    is_holiday,
)
from lighting.errors import LightingInputError

CAL = Calendar(
    "Test",
    (
        EventRule("Stadtfest", "event", frozenset({date(2026, 8, 29)})),
        HolidayRule("holiday eve", "eve", eve=True),
        HolidayRule("holiday", "holiday"),
        NthWeekdayRule("Weihnachtsmarkt", "market", weekday=5, n=1, month=12),
        NthWeekdayRule("last Friday", "lastfri", weekday=4, n=-1),
        DateRangeRule(
            "Winterferien", "winter", date(2000, 12, 20), date(2001, 1, 6), every_year=True
        ),
        DateRangeRule("Baustelle", "works", date(2026, 5, 4), date(2026, 5, 8)),
        WeekdayRule("Wochenende", "weekend", frozenset({4, 5})),
    ),
    default_program="default",
)


@pytest.mark.parametrize(
    ("night", "program", "rule"),
    [
        (date(2026, 8, 29), "event", "Stadtfest"),  # a Saturday: the event wins by order
        (date(2026, 6, 3), "eve", "holiday eve"),  # Corpus Christi (NW) is on 4 June
        (date(2026, 6, 4), "holiday", "holiday"),
        (date(2026, 12, 5), "market", "Weihnachtsmarkt"),  # first Saturday of December
        (date(2026, 12, 12), "weekend", "Wochenende"),  # second Saturday: not the market
        (date(2026, 7, 31), "lastfri", "last Friday"),
        (date(2026, 7, 24), "weekend", "Wochenende"),  # a Friday, not the last
        (date(2026, 12, 30), "winter", "Winterferien"),  # wraps over New Year
        (date(2027, 1, 5), "winter", "Winterferien"),
        (date(2026, 5, 6), "works", "Baustelle"),
        (date(2026, 5, 12), "default", "default"),  # a Tuesday, nothing matches
    ],
)
def test_rule_order_is_priority(night: date, program: str, rule: str) -> None:
    choice = choose_program(CAL, night)
    assert (choice.program, choice.rule) == (program, rule)


@pytest.mark.parametrize(
    ("state", "day", "expected"),
    [
        ("NW", date(2026, 6, 4), True),  # Fronleichnam in North Rhine-Westphalia
        ("BE", date(2026, 6, 4), False),  # not in Berlin
        ("BE", date(2026, 3, 8), True),  # Frauentag only in Berlin
        ("NW", date(2026, 3, 8), False),
        ("NW", date(2026, 12, 25), True),
    ],
)
def test_holidays_of_the_state(state: str, day: date, expected: bool) -> None:
    cal = Calendar("C", (), "default", state=state)
    assert (is_holiday(cal, day) is not None) is expected


def test_default_state_is_north_rhine_westphalia() -> None:
    assert Calendar("C", (), "x").state == "NW"


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (WeekdayRule("w", "p", frozenset({7})), "calendar 'C'.rules[0].weekdays"),
        (NthWeekdayRule("n", "p", weekday=1, n=0), "calendar 'C'.rules[0].n"),
        (NthWeekdayRule("n", "p", weekday=9, n=1), "calendar 'C'.rules[0].weekday"),
        (NthWeekdayRule("n", "p", weekday=1, n=1, month=13), "calendar 'C'.rules[0].month"),
        (DateRangeRule("d", "p", date(2026, 2, 1), date(2026, 1, 1)), "calendar 'C'.rules[0].last"),
    ],
)
def test_bad_rules_name_the_field(rule: object, field: str) -> None:
    with pytest.raises(LightingInputError) as err:
        Calendar("C", (rule,), "x")  # type: ignore[arg-type]
    assert err.value.field == field
