"""Calendars: which program runs on which night.

Rules are tried in order (the order is the priority); the first that matches the night names
the program, and the calendar's default program applies when none matches. A night is named
by the local date of its evening; rules look at that date unless they say otherwise
(a holiday rule can also match the *eve* of a holiday, the night leading into it).
Public holidays come from the ``holidays`` package for the site's country and state
(default Germany, North Rhine-Westphalia: ``DE``/``NW``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

from lighting.errors import LightingInputError


@dataclass(frozen=True, slots=True)
class WeekdayRule:
    """Matches nights whose evening falls on one of ``weekdays`` (0 = Monday … 6 = Sunday)."""

    name: str
    program: str
    weekdays: frozenset[int]


@dataclass(frozen=True, slots=True)
class DateRangeRule:
    """Matches evenings from ``first`` to ``last`` inclusive; with ``every_year`` only month
    and day count and the range may wrap over New Year (20 Dec – 6 Jan)."""

    name: str
    program: str
    first: date
    last: date
    every_year: bool = False


@dataclass(frozen=True, slots=True)
class NthWeekdayRule:
    """Matches the ``n``-th ``weekday`` of a month (``n`` = -1: the last); ``month`` None means
    every month. Example: the first Saturday of December (Christmas market)."""

    name: str
    program: str
    weekday: int
    n: int
    month: int | None = None


@dataclass(frozen=True, slots=True)
class HolidayRule:
    """Matches nights whose evening is a public holiday, or with ``eve`` the night before one
    (its morning is the holiday)."""

    name: str
    program: str
    eve: bool = False


@dataclass(frozen=True, slots=True)
class EventRule:
    """A special event: matches the listed nights (evening dates)."""

    name: str
    program: str
    nights: frozenset[date]


Rule = WeekdayRule | DateRangeRule | NthWeekdayRule | HolidayRule | EventRule


@dataclass(frozen=True, slots=True)
class Calendar:
    name: str
    rules: tuple[Rule, ...]
    default_program: str
    country: str = "DE"
    state: str | None = "NW"

    def __post_init__(self) -> None:
        holiday_names(self.country, self.state, 2000, f"calendar {self.name!r}")
        for i, rule in enumerate(self.rules):
            _check_rule(rule, f"calendar {self.name!r}.rules[{i}]")


@dataclass(frozen=True, slots=True)
class Choice:
    """The program for a night and why: the rule's name, or ``default``."""

    program: str
    rule: str


def _check_rule(rule: Rule, where: str) -> None:
    if isinstance(rule, WeekdayRule):
        bad = sorted(d for d in rule.weekdays if not 0 <= d <= 6)
        if bad or not rule.weekdays:
            raise LightingInputError(f"{where}.weekdays", f"need days 0..6 (Monday = 0), got {bad}")
    elif isinstance(rule, DateRangeRule):
        if not rule.every_year and rule.last < rule.first:
            raise LightingInputError(f"{where}.last", "ends before it starts")
    elif isinstance(rule, NthWeekdayRule):
        if not 0 <= rule.weekday <= 6:
            raise LightingInputError(f"{where}.weekday", f"{rule.weekday} is not in 0..6")
        if rule.n == 0 or not -5 <= rule.n <= 5:
            raise LightingInputError(f"{where}.n", f"{rule.n} is not in 1..5 or -5..-1")
        if rule.month is not None and not 1 <= rule.month <= 12:
            raise LightingInputError(f"{where}.month", f"{rule.month} is not in 1..12")


@lru_cache(maxsize=256)
def holiday_names(
    country: str, state: str | None, year: int, where: str = "calendar"
) -> dict[date, str]:
    """Public holidays of ``country``/``state`` in ``year`` (date → name)."""
    try:
        table = holidays.country_holidays(country, subdiv=state, years=year)
    except NotImplementedError as exc:
        field = "country" if "subdivision" not in str(exc) else "state"
        raise LightingInputError(
            f"{where}.{field}", f"unknown holiday region {country}/{state}: {exc}"
        ) from exc
    return {day: str(name) for day, name in table.items()}


def is_holiday(calendar: Calendar, day: date) -> str | None:
    """The holiday's name if ``day`` is a public holiday in the calendar's region."""
    return holiday_names(calendar.country, calendar.state, day.year).get(day)


def _nth_weekday_matches(rule: NthWeekdayRule, day: date) -> bool:
    if day.weekday() != rule.weekday or (rule.month is not None and day.month != rule.month):
        return False
    if rule.n > 0:
        return (day.day - 1) // 7 + 1 == rule.n
    following_month = (day + timedelta(days=-rule.n * 7)).month
    previous_week_month = (day + timedelta(days=(-rule.n - 1) * 7)).month
    return previous_week_month == day.month and following_month != day.month


def _in_range(rule: DateRangeRule, day: date) -> bool:
    if not rule.every_year:
        return rule.first <= day <= rule.last
    key = (day.month, day.day)
    first, last = (rule.first.month, rule.first.day), (rule.last.month, rule.last.day)
    return first <= key <= last if first <= last else key >= first or key <= last


def rule_matches(calendar: Calendar, rule: Rule, night: date) -> bool:
    """Whether ``rule`` of ``calendar`` selects the night whose evening is ``night``."""
    if isinstance(rule, WeekdayRule):
        return night.weekday() in rule.weekdays
    if isinstance(rule, DateRangeRule):
        return _in_range(rule, night)
    if isinstance(rule, NthWeekdayRule):
        return _nth_weekday_matches(rule, night)
    if isinstance(rule, HolidayRule):
        day = night + timedelta(days=1) if rule.eve else night
        return is_holiday(calendar, day) is not None
    return night in rule.nights


def choose_program(calendar: Calendar, night: date) -> Choice:
    """The first matching rule's program for ``night``, else the default program."""
    for rule in calendar.rules:
        if rule_matches(calendar, rule, night):
            return Choice(rule.program, rule.name)
    return Choice(calendar.default_program, "default")
