"""Working-day arithmetic for time limits: Monday to Friday count, weekends are skipped.

Statutory holidays and the weekends worked in their place (调休) are out of scope: the State Council
publishes them each year, and a deployment that needs them would add a holiday calendar here.
"""

from __future__ import annotations

from datetime import date, timedelta

SATURDAY = 5


def is_working_day(day: date) -> bool:
    return day.weekday() < SATURDAY


def add_working_days(start: date, days: int) -> date:
    """The day `days` working days after `start` (`start` itself is day 0, counted or not)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while days:
        day += timedelta(days=1)
        if is_working_day(day):
            days -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """How many working days lie in [start, end): the days a suspension from `start` to `end` stopped."""
    count, day = 0, start
    while day < end:
        if is_working_day(day):
            count += 1
        day += timedelta(days=1)
    return count
